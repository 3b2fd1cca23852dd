"""`PayoutGateway` over Stripe Connect with the real `stripe` SDK (locally: the stand-in, same HTTP API).

Express accounts are created with `connect-account-<contributor>` as idempotency key and transfers with the
caller's key (`payout-<batch>-<contributor>`), so a request retried by the SDK, or replayed by us after a crash
between the call and our settle, returns the first outcome instead of paying again. Stripe keeps keys for
24 hours; a retry later than that must first look the transfer up (`transfer_group`/metadata), not resend.

Errors: unreachable, 5xx and rate limits -> `PaymentProviderUnavailable` (retry later, same key). A transfer
Stripe refused -> `TransferRefused` (no money moved; the ledger may put it back), except an idempotency
error: the key was used with other parameters, so a transfer may exist under it and nothing may be returned
(-> `PaymentProviderError`, for a person to look at). Bad credentials -> `PaymentProviderError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import stripe
import structlog

from shared.config import Settings
from shared.payments.connect import ConnectedAccount, PayoutGateway, Transfer, TransferRefused
from shared.payments.gateway import PaymentProviderError, PaymentProviderUnavailable, stripe_client_from_settings

log = structlog.get_logger(__name__)

T = TypeVar("T")


def account_idempotency_key(contributor_id: str) -> str:
    return f"connect-account-{contributor_id}"


class StripeConnectGateway:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def create_connected_account(self, *, contributor_id: str, country: str, email: str | None) -> str:
        if len(country) != 2 or not country.isalpha():
            raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, not {country!r}")
        params: dict[str, Any] = {
            "type": "express",
            "country": country.upper(),
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"contributor_id": contributor_id},
        }
        if email:
            params["email"] = email
        account = await _call(
            "create the connected account",
            lambda: self._client.v1.accounts.create_async(
                params,  # type: ignore[arg-type]  # a plain dict is what the TypedDict describes
                {"idempotency_key": account_idempotency_key(contributor_id)},
            ),
        )
        log.info("stripe.connect_account_created", account_id=account.id, contributor_id=contributor_id)
        return account.id

    async def create_onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        link = await _call(
            "create the onboarding link",
            lambda: self._client.v1.account_links.create_async(
                {
                    "account": account_id,
                    "type": "account_onboarding",
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                }
            ),
        )
        return link.url

    async def retrieve_account(self, account_id: str) -> ConnectedAccount:
        account = await _call("retrieve the account", lambda: self._client.v1.accounts.retrieve_async(account_id))
        return ConnectedAccount(
            account_id=account.id,
            payouts_enabled=bool(account.payouts_enabled),
            details_submitted=bool(account.details_submitted),
        )

    async def transfer(
        self,
        *,
        amount_minor: int,
        currency: str,
        destination: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Transfer:
        if amount_minor <= 0:
            raise ValueError(f"a transfer moves a positive amount, not {amount_minor}")
        if len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, not {currency!r}")
        params: dict[str, Any] = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "destination": destination,
            "metadata": dict(metadata),
        }
        sent = await _call(
            "transfer",
            lambda: self._client.v1.transfers.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            ),
            refused=TransferRefused,
        )
        log.info("stripe.transfer_created", transfer_id=sent.id, destination=destination, amount=sent.amount,
                 currency=sent.currency, idempotency_key=idempotency_key)  # fmt: skip
        return Transfer(transfer_id=sent.id, amount_minor=sent.amount, currency=sent.currency.upper())


async def _call(
    what: str, request: Callable[[], Awaitable[T]], *, refused: type[PaymentProviderError] = PaymentProviderError
) -> T:
    """Run one SDK request, turning Stripe's errors into the port's (see the module's docstring)."""
    try:
        return await request()
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentProviderUnavailable(f"Stripe is unreachable ({what}): {exc.user_message or exc}") from exc
    except stripe.IdempotencyError as exc:
        raise PaymentProviderError(
            f"Stripe refused to {what}: the idempotency key was used with other parameters ({exc.user_message or exc})"
        ) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise PaymentProviderError(f"Stripe refused our credentials ({what}): {exc.user_message or exc}") from exc
    except stripe.StripeError as exc:
        if exc.http_status is None or exc.http_status >= 500 or exc.http_status == 409:
            # No answer we can trust, a failure on Stripe's side or a request still running under the same key.
            raise PaymentProviderUnavailable(f"Stripe failed ({what}): {exc.user_message or exc}") from exc
        code = f" [{exc.code}]" if exc.code else ""
        raise refused(f"Stripe refused to {what}{code}: {exc.user_message or exc}") from exc


_gateway: PayoutGateway | None = None


def get_payout_gateway(settings: Settings) -> PayoutGateway:
    """The process's payout gateway, built on first use (one pooled HTTP client per worker)."""
    global _gateway
    if _gateway is None:
        _gateway = StripeConnectGateway(stripe_client_from_settings(settings))
    return _gateway


def set_payout_gateway(gateway: PayoutGateway | None) -> None:
    """For hosts and tests that build the gateway themselves (None: build from settings again)."""
    global _gateway
    _gateway = gateway
