"""Connect in the stand-in: Express accounts, account links to a hosted onboarding page, rejection, transfers.

A mixin of `Store` (same objects, events and clock), kept apart because it is its own part of Stripe's API.
Accounts start restricted (`requirements.disabled_reason = requirements.past_due`); the person finishes
onboarding on the hosted page, where they may also submit details that fail verification (the account stays
restricted). `POST /v1/accounts/{id}/reject` closes an account, as Stripe's endpoint does; transfers to a
restricted or rejected account are refused with `insufficient_capabilities_for_transfer`, as Stripe refuses
them. Account changes are Connect events (`account` set on the event); transfers are the platform's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from devhost.stripe_standin import forms
from devhost.stripe_standin.errors import invalid
from devhost.stripe_standin.ids import new_id
from devhost.stripe_standin.lists import as_list, created_filter, page

ACCOUNT_LINK_LIFETIME = 300
# What the person on the hosted onboarding page does: `verified` finishes onboarding; `verification_failed`
# submits details that fail verification (Stripe's test date of birth 1900-01-01), which leaves the account
# restricted: payouts disabled and transfers refused, as a live account whose checks failed.
ONBOARDING_OUTCOMES = ("verified", "verification_failed")
REJECT_REASONS = ("fraud", "terms_of_service", "other")
_ONBOARDING_REQUIREMENTS = [
    "business_type", "external_account", "individual.dob.day", "individual.first_name", "individual.last_name",
    "tos_acceptance.date", "tos_acceptance.ip",
]  # fmt: skip


class ConnectObjects:
    # Provided by Store.
    objects: dict[str, dict]
    public_url: str
    _onboarding: dict[str, dict]
    _transfers: list[str]
    now: Callable[[], int]
    get: Callable[..., dict]
    _put: Callable[[dict], dict]
    _emit: Callable[..., dict]

    # --- Connect: connected accounts and transfers --------------------------------------------------------------
    def create_account(self, params: dict) -> dict:
        """A connected account; it can receive transfers once onboarded through an account link's page."""
        forms.reject_unknown(
            params,
            {"type", "country", "email", "capabilities", "metadata", "business_type", "business_profile",
             "controller", "default_currency", "individual", "company", "settings", "tos_acceptance"},
        )  # fmt: skip
        account_type = forms.get_str(params, "type")
        if account_type not in (None, "express", "standard", "custom"):
            raise invalid("Invalid type: must be one of express, standard, or custom", param="type")
        country = (forms.get_str(params, "country") or "US").upper()
        if len(country) != 2 or not country.isalpha():
            raise invalid(f"Country '{country}' is unknown. Try using a 2-character alphanumeric country code.",
                          param="country")  # fmt: skip
        requested = {
            name
            for name, wish in (forms.get_dict(params, "capabilities") or {}).items()
            if isinstance(wish, dict) and wish.get("requested") == "true"
        }
        return self._put(
            {
                "id": new_id("acct", 16),
                "object": "account",
                "business_type": forms.get_str(params, "business_type"),
                "capabilities": {name: "inactive" for name in sorted(requested or {"transfers"})},
                "charges_enabled": False,
                "country": country,
                "created": self.now(),
                "default_currency": (forms.get_str(params, "default_currency") or "usd").lower(),
                "details_submitted": False,
                "email": forms.get_str(params, "email", max_length=512),
                "metadata": forms.get_metadata(params) or {},
                "payouts_enabled": False,
                "requirements": {
                    "currently_due": list(_ONBOARDING_REQUIREMENTS),
                    "disabled_reason": "requirements.past_due",
                    "past_due": list(_ONBOARDING_REQUIREMENTS),
                },
                "type": account_type or "express",
            }
        )

    def create_account_link(self, params: dict) -> dict:
        forms.reject_unknown(params, {"account", "refresh_url", "return_url", "type", "collect", "collection_options"})
        account = self.get("account", forms.get_str(params, "account", required=True) or "", "account")
        link_type = forms.get_str(params, "type", required=True)
        if link_type not in ("account_onboarding", "account_update"):
            raise invalid("Invalid type: must be one of account_onboarding or account_update", param="type")
        return_url = forms.get_str(params, "return_url", required=True)
        if account["requirements"]["disabled_reason"] and account["requirements"]["disabled_reason"].startswith(
            "rejected."
        ):
            raise invalid(f"You cannot create account links for rejected accounts: {account['id']}", param="account")
        now = self.now()
        token = new_id("link")
        expires_at = now + ACCOUNT_LINK_LIFETIME
        self._onboarding[token] = {"account": account["id"], "return_url": return_url, "expires_at": expires_at}
        return {
            "object": "account_link",
            "created": now,
            "expires_at": expires_at,
            "url": f"{self.public_url}/onboard/{token}",
        }

    def onboarding(self, token: str) -> dict | None:
        link = self._onboarding.get(token)
        return link if link is not None and link["expires_at"] > self.now() else None

    def complete_onboarding(self, token: str, outcome: str = "verified") -> str:
        """The person behind the account submitted the hosted form; `outcome` is what verification makes of it."""
        if outcome not in ONBOARDING_OUTCOMES:
            raise invalid(f"Unknown onboarding outcome: {outcome}", param="outcome")
        link = self._onboarding.pop(token)
        account = self.objects[link["account"]]
        if outcome == "verified":
            self._change_account(
                account,
                capabilities={name: "active" for name in account["capabilities"]},
                charges_enabled=True,
                details_submitted=True,
                payouts_enabled=True,
                requirements={"currently_due": [], "disabled_reason": None, "past_due": []},
            )
        else:
            self._change_account(
                account,
                capabilities={name: "inactive" for name in account["capabilities"]},
                charges_enabled=False,
                details_submitted=True,
                payouts_enabled=False,
                requirements={
                    "currently_due": ["individual.verification.document"],
                    "disabled_reason": "requirements.past_due",
                    "past_due": ["individual.verification.document"],
                },
            )
        return link["return_url"]

    def reject_account(self, account_id: str, params: dict) -> dict:
        """Stripe's POST /v1/accounts/{id}/reject: the platform closes the account; nothing reaches it after."""
        forms.reject_unknown(params, {"reason"})
        account = self.get("account", account_id)
        reason = forms.get_str(params, "reason", required=True)
        if reason not in REJECT_REASONS:
            raise invalid(f"Invalid reason: must be one of {', '.join(REJECT_REASONS)}", param="reason")
        self._change_account(
            account,
            capabilities={name: "inactive" for name in account["capabilities"]},
            charges_enabled=False,
            payouts_enabled=False,
            requirements={**account["requirements"], "disabled_reason": f"rejected.{reason}"},
        )
        return account

    def _change_account(self, account: dict, **changes: Any) -> None:
        """Apply `changes`; if any field differs, a Connect `account.updated` names what it was before."""
        previous = {k: copy.deepcopy(account[k]) for k, v in changes.items() if account[k] != v}
        if previous:
            account.update(changes)
            self._emit("account.updated", account, stream=account["id"], previous=previous, account=account["id"])

    def create_transfer(self, params: dict) -> dict:
        forms.reject_unknown(
            params,
            {"amount", "currency", "destination", "metadata", "description", "transfer_group", "source_transaction",
             "source_type"},
        )  # fmt: skip
        amount = forms.get_int(params, "amount", required=True, minimum=1)
        currency = (forms.get_str(params, "currency", required=True) or "").lower()
        if len(currency) != 3 or not currency.isalpha():
            raise invalid(f"Invalid currency: {currency}", param="currency")
        destination = self.get("account", forms.get_str(params, "destination", required=True) or "", "destination")
        if destination["capabilities"].get("transfers") != "active":
            raise invalid(
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                param="destination",
                code="insufficient_capabilities_for_transfer",
            )
        transfer = self._put(
            {
                "id": new_id("tr"),
                "object": "transfer",
                "amount": amount,
                "amount_reversed": 0,
                "created": self.now(),
                "currency": currency,
                "description": forms.get_str(params, "description"),
                "destination": destination["id"],
                "destination_payment": new_id("py"),
                "livemode": False,
                "metadata": forms.get_metadata(params) or {},
                "reversals": as_list([], "/v1/transfers/reversals"),
                "reversed": False,
                "source_transaction": forms.get_str(params, "source_transaction"),
                "transfer_group": forms.get_str(params, "transfer_group"),
            }
        )
        transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
        self._transfers.append(transfer["id"])
        # A platform event (the transfer is the platform's object): it goes to account endpoints, not Connect ones.
        self._emit("transfer.created", transfer, stream=destination["id"])
        return transfer

    def list_transfers(self, params: dict) -> dict:
        """GET /v1/transfers, newest first; filters `destination`, `transfer_group`, `created`."""
        forms.reject_unknown(params, {"limit", "created", "destination", "transfer_group", "ending_before",
                                      "starting_after"})  # fmt: skip
        found = [self.objects[tid] for tid in reversed(self._transfers)]
        for key in ("destination", "transfer_group"):
            wanted = forms.get_str(params, key)
            if wanted is not None:
                found = [t for t in found if t[key] == wanted]
        return page(created_filter(found, params.get("created")), params, "/v1/transfers")
