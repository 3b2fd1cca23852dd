"""The stand-in's state: Stripe objects held in memory and shaped as Stripe's API returns them.

Methods run on the stand-in's event loop without awaiting, so each request's changes are atomic.
Every change other parties must learn of becomes an event (`evt_...`, kept for GET /v1/events) handed
to `on_event` with a stream key: events of one stream are delivered in order (one checkout, one
subscription), streams independently.

Shapes follow the SDK's current API version, with a few fields of older versions kept alongside where
apps commonly still read them (subscription `current_period_*`, invoice `subscription`/`paid`).
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devhost.stripe_standin import forms
from devhost.stripe_standin.connect import ONBOARDING_OUTCOMES, ConnectObjects
from devhost.stripe_standin.errors import StripeError, invalid, missing, no_such
from devhost.stripe_standin.ids import new_id
from devhost.stripe_standin.lists import as_list, created_filter, page

API_VERSION = "2026-10-28.endive"  # stripe-python 16.1's pinned version: what the SDK expects back
ZERO_DECIMAL_CURRENCIES = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
INTERVALS = ("day", "week", "month", "year")
STATE_VERSION = 1
PAYMENT_OUTCOMES = ("card", "delayed_success", "delayed_failure")
SESSION_MIN_LIFETIME = 30 * 60
SESSION_MAX_LIFETIME = 24 * 3600
IDEMPOTENCY_KEY_LIFETIME = 24 * 3600  # as Stripe's

# Parameters of POST /v1/checkout/sessions that Stripe knows; those the stand-in does not model are
# accepted and ignored (they change nothing a local run can observe), anything else is refused.
_SESSION_PARAMS = {
    "mode", "line_items", "success_url", "cancel_url", "metadata", "client_reference_id", "customer",
    "customer_email", "expires_at", "payment_intent_data", "subscription_data", "ui_mode", "return_url",
    "after_expiration", "allow_promotion_codes", "automatic_tax", "billing_address_collection", "consent_collection",
    "currency", "custom_fields", "custom_text", "customer_creation", "customer_update", "discounts",
    "invoice_creation", "locale", "payment_method_collection", "payment_method_configuration",
    "payment_method_options", "payment_method_types", "phone_number_collection", "redirect_on_completion",
    "saved_payment_method_options", "setup_intent_data", "shipping_address_collection", "shipping_options",
    "submit_type", "tax_id_collection", "adaptive_pricing", "optional_items", "origin_context", "permissions",
    "wallet_options", "branding_settings", "name_collection",
}  # fmt: skip

EventSink = Callable[[dict, str], None]


def format_amount(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,} {currency.upper()}"
    return f"{amount / 100:,.2f} {currency.upper()}"


def add_interval(anchor: int, interval: str, count: int) -> int:
    """`anchor` plus `count` intervals; months and years keep the anchor's day, clamped to the month's end."""
    if interval == "day":
        return anchor + count * 86400
    if interval == "week":
        return anchor + count * 7 * 86400
    start = datetime.fromtimestamp(anchor, UTC)
    months = count * (12 if interval == "year" else 1)
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return int(start.replace(year=year, month=month0 + 1, day=day).timestamp())


@dataclass(frozen=True)
class SavedResult:
    fingerprint: str
    status: int
    body: str


class Store(ConnectObjects):
    def __init__(self, *, public_url: str, on_event: EventSink, clock: Callable[[], float] = time.time) -> None:
        self.public_url = public_url.rstrip("/")
        self._on_event = on_event
        self._clock = clock
        self.objects: dict[str, dict] = {}
        self._line_items: dict[str, list[dict]] = {}  # session id -> items (Stripe serves them separately)
        self._private_session_data: dict[str, dict] = {}  # session id -> what Stripe copies on completion
        self._sessions: list[str] = []  # creation order, for listing
        self._events: list[str] = []
        self._periods: dict[str, int] = {}  # subscription id -> periods started, counted from the anchor
        self._onboarding: dict[str, dict] = {}  # account link token -> account, return_url, expires_at
        self._transfers: list[str] = []  # creation order, for listing
        # key -> [fingerprint, status, body, saved_at]: kept with the objects, so a retry after a restart replays
        self._idempotency: dict[str, list] = {}

    # --- plumbing -----------------------------------------------------------------------------------------------
    _PERSISTED = ("objects", "_line_items", "_private_session_data", "_sessions", "_events", "_periods", "_onboarding")
    _PERSISTED_SINCE_CONNECT = ("_transfers", "_idempotency")  # absent from older state files: start empty

    def snapshot(self) -> dict:
        """Everything but the webhook queue, as plain JSON (devhost keeps it in VAR_DIR across restarts)."""
        names = (*self._PERSISTED, *self._PERSISTED_SINCE_CONNECT)
        return {"version": STATE_VERSION, **{name.lstrip("_"): getattr(self, name) for name in names}}

    def restore(self, state: dict) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r}, expected {STATE_VERSION}")
        for name in self._PERSISTED:
            setattr(self, name, state[name.lstrip("_")])
        for name in self._PERSISTED_SINCE_CONNECT:
            setattr(self, name, state.get(name.lstrip("_"), type(getattr(self, name))()))

    @staticmethod
    def _idempotency_slot(api_key: str, idempotency_key: str) -> str:
        # Keys are per API key, as Stripe's; the state file holds a digest of the secret key, not the key.
        return hashlib.sha256(api_key.encode()).hexdigest()[:16] + ":" + idempotency_key

    def idempotent_result(self, api_key: str, idempotency_key: str) -> SavedResult | None:
        saved = self._idempotency.get(self._idempotency_slot(api_key, idempotency_key))
        if saved is None or saved[3] < self.now() - IDEMPOTENCY_KEY_LIFETIME:
            return None
        return SavedResult(fingerprint=saved[0], status=saved[1], body=saved[2])

    def save_idempotent_result(self, api_key: str, key: str, fingerprint: str, status: int, body: str) -> None:
        now = self.now()
        if len(self._idempotency) % 1000 == 0:  # now and then, forget keys past their lifetime
            self._idempotency = {k: v for k, v in self._idempotency.items() if v[3] >= now - IDEMPOTENCY_KEY_LIFETIME}
        self._idempotency[self._idempotency_slot(api_key, key)] = [fingerprint, status, body, now]

    def now(self) -> int:
        return int(self._clock())

    def get(self, kind: str, object_id: str, param: str | None = "id") -> dict:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise no_such(kind.replace("_", " ").replace("checkout.session", "checkout session"), object_id, param)
        return obj

    def _put(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        return obj

    def _emit(
        self, event_type: str, obj: dict, stream: str, previous: dict | None = None, account: str | None = None
    ) -> dict:
        """`account`: the connected account the event happened on (a Connect event, for Connect endpoints)."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if account is not None:
            event["account"] = account
        self._put(event)
        self._events.append(event["id"])
        self._on_event(event, stream)
        return event

    def expand(self, obj: dict, paths: list[str] | None) -> dict:
        """Stripe's `expand[]`: replace ids (and a session's line items) by the objects, up to 4 levels."""
        result = copy.deepcopy(obj)
        for index, dotted in enumerate(paths or []):
            parts = dotted.split(".")
            if len(parts) > 4:
                raise invalid(f"You cannot expand more than 4 levels of a property: {dotted}", f"expand[{index}]")
            self._expand(result, parts, dotted, f"expand[{index}]")
        return result

    def _expand(self, node: Any, parts: list[str], dotted: str, param: str) -> None:
        if isinstance(node, dict) and node.get("object") == "list" and parts[0] == "data":
            for item in node["data"]:
                self._expand(item, parts[1:], dotted, param)
            return
        head, rest = parts[0], parts[1:]
        is_session_items = head == "line_items" and isinstance(node, dict) and node.get("object") == "checkout.session"
        if not isinstance(node, dict) or (head not in node and not is_session_items):
            raise invalid(f"This property cannot be expanded ({dotted}).", param)
        if is_session_items:
            node[head] = self.session_line_items(node["id"])
        elif isinstance(node[head], str) and node[head] in self.objects:
            node[head] = copy.deepcopy(self.objects[node[head]])
        elif not isinstance(node[head], dict) and node[head] is not None:
            raise invalid(f"This property cannot be expanded ({dotted}).", param)
        if rest and node[head] is not None:
            self._expand(node[head], rest, dotted, param)

    # --- checkout sessions --------------------------------------------------------------------------------------
    def create_checkout_session(self, params: dict) -> dict:
        forms.reject_unknown(params, _SESSION_PARAMS)
        mode = forms.get_str(params, "mode", required=True)
        if mode not in ("payment", "subscription"):
            raise invalid(f"Invalid mode: {mode!r}; the stand-in supports 'payment' and 'subscription'.", param="mode")
        ui_mode = forms.get_str(params, "ui_mode") or "hosted"
        if ui_mode != "hosted":
            raise invalid("The stand-in serves hosted Checkout only (ui_mode=hosted).", param="ui_mode")
        success_url = forms.get_str(params, "success_url", required=True)
        cancel_url = forms.get_str(params, "cancel_url")
        now = self.now()
        items = self._parse_line_items(params, mode, now)
        currency = items[0]["currency"]
        expires_at = forms.get_int(params, "expires_at")
        if expires_at is None:
            expires_at = now + SESSION_MAX_LIFETIME
        elif expires_at < now + SESSION_MIN_LIFETIME:
            raise invalid("The `expires_at` timestamp must be at least 30 minutes from now.", param="expires_at")
        elif expires_at > now + SESSION_MAX_LIFETIME:
            raise invalid("The `expires_at` timestamp must be less than 24 hours from now.", param="expires_at")
        customer = forms.get_str(params, "customer")
        customer_email = forms.get_str(params, "customer_email", max_length=800)
        if customer is not None:
            self.get("customer", customer, "customer")
            if customer_email is not None:
                raise invalid("You may only specify one of these parameters: customer, customer_email.", "customer")
        pi_data = forms.get_dict(params, "payment_intent_data") or {}
        sub_data = forms.get_dict(params, "subscription_data") or {}
        if pi_data and mode != "payment":
            raise invalid("`payment_intent_data` can only be used in `payment` mode.", param="payment_intent_data")
        if sub_data and mode != "subscription":
            raise invalid("`subscription_data` can only be used in `subscription` mode.", param="subscription_data")
        subtotal = sum(item["amount_total"] for item in items)
        session = {
            "id": new_id("cs_test", 58),
            "object": "checkout.session",
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "cancel_url": cancel_url,
            "client_reference_id": forms.get_str(params, "client_reference_id", max_length=200),
            "created": now,
            "currency": currency,
            "customer": customer,
            "customer_details": None,
            "customer_email": customer_email,
            "expires_at": expires_at,
            "invoice": None,
            "livemode": False,
            "locale": forms.get_str(params, "locale"),
            "metadata": forms.get_metadata(params) or {},
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": success_url,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": None,
        }
        session["url"] = f"{self.public_url}/pay/{session['id']}"
        self._line_items[session["id"]] = items
        self._private_session_data[session["id"]] = {
            "payment_intent_metadata": forms.get_metadata(pi_data, prefix="payment_intent_data") or {},
            "subscription_metadata": forms.get_metadata(sub_data, prefix="subscription_data") or {},
        }
        self._sessions.append(session["id"])
        return self._put(session)

    def _parse_line_items(self, params: dict, mode: str, now: int) -> list[dict]:
        raw = params.get("line_items")
        if raw is None or raw == "":
            raise missing("line_items")
        if not isinstance(raw, list) or not raw:
            raise invalid("line_items must be a non-empty array.", param="line_items")
        items = []
        for index, line in enumerate(raw):
            prefix = f"line_items[{index}]"
            if not isinstance(line, dict):
                raise invalid(f"Invalid object: {prefix} must be a hash", param=prefix)
            forms.reject_unknown(line, {"price_data", "quantity", "price", "adjustable_quantity", "tax_rates"}, prefix)
            if "price" in line:
                # Only inline prices: the stand-in keeps no product catalogue.
                raise no_such("price", str(line["price"]), f"{prefix}[price]")
            price_data = forms.get_dict(line, "price_data", prefix, required=True)
            price_prefix = f"{prefix}[price_data]"
            forms.reject_unknown(
                price_data,
                {"currency", "unit_amount", "product_data", "recurring", "product", "tax_behavior",
                 "unit_amount_decimal"},
                price_prefix,
            )  # fmt: skip
            currency = (forms.get_str(price_data, "currency", price_prefix, required=True) or "").lower()
            if len(currency) != 3 or not currency.isalpha():
                raise invalid(f"Invalid currency: {currency}", param=f"{price_prefix}[currency]")
            unit_amount = forms.get_int(price_data, "unit_amount", price_prefix, required=True, minimum=0)
            product_data = forms.get_dict(price_data, "product_data", price_prefix, required=True)
            product_prefix = f"{price_prefix}[product_data]"
            forms.reject_unknown(
                product_data, {"name", "description", "images", "metadata", "tax_code", "unit_label"}, product_prefix
            )
            name = forms.get_str(product_data, "name", product_prefix, required=True)
            recurring = None
            recurring_data = forms.get_dict(price_data, "recurring", price_prefix)
            if recurring_data is not None:
                interval = forms.get_str(recurring_data, "interval", f"{price_prefix}[recurring]", required=True)
                if interval not in INTERVALS:
                    raise invalid(
                        f"Invalid recurring interval: must be one of {', '.join(INTERVALS)}",
                        param=f"{price_prefix}[recurring][interval]",
                    )
                count = forms.get_int(recurring_data, "interval_count", f"{price_prefix}[recurring]", minimum=1) or 1
                recurring = {"interval": interval, "interval_count": count, "usage_type": "licensed"}
            if mode == "subscription" and recurring is None:
                raise invalid(
                    "You must specify at least one recurring price in `subscription` mode when using prices.",
                    param=f"{price_prefix}[recurring]",
                )
            if mode == "payment" and recurring is not None:
                raise invalid(
                    "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                    "mode or use only one-time prices.",
                    param=f"{price_prefix}[recurring]",
                )
            quantity = forms.get_int(line, "quantity", prefix, required=True, minimum=1)
            assert unit_amount is not None and quantity is not None and name is not None
            if items and currency != items[0]["currency"]:
                raise invalid("All line items must use the same currency.", param=f"{price_prefix}[currency]")
            product = self._put(
                {
                    "id": new_id("prod", 14),
                    "object": "product",
                    "active": True,
                    "created": now,
                    "description": product_data.get("description"),
                    "livemode": False,
                    "metadata": forms.get_metadata(product_data, prefix=product_prefix) or {},
                    "name": name,
                }
            )
            price = self._put(
                {
                    "id": new_id("price"),
                    "object": "price",
                    "active": False,  # inline prices are archived at once, as Stripe does
                    "created": now,
                    "currency": currency,
                    "livemode": False,
                    "metadata": {},
                    "product": product["id"],
                    "recurring": recurring,
                    "type": "recurring" if recurring else "one_time",
                    "unit_amount": unit_amount,
                }
            )
            items.append(
                {
                    "id": new_id("li"),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": unit_amount * quantity,
                    "amount_tax": 0,
                    "amount_total": unit_amount * quantity,
                    "currency": currency,
                    "description": name,
                    "price": price,
                    "quantity": quantity,
                }
            )
        return items

    def session_line_items(self, session_id: str) -> dict:
        self.get("checkout.session", session_id)
        return as_list(copy.deepcopy(self._line_items[session_id]), f"/v1/checkout/sessions/{session_id}/line_items")

    def list_checkout_sessions(self, params: dict) -> dict:
        forms.reject_unknown(params, {"limit", "payment_intent", "subscription", "customer", "status"})
        limit = forms.get_int(params, "limit", minimum=1) or 10
        wanted = {k: params[k] for k in ("payment_intent", "subscription", "customer", "status") if k in params}
        found = [
            self.objects[sid]
            for sid in reversed(self._sessions)
            if all(self.objects[sid].get(k) == v for k, v in wanted.items())
        ]
        page = as_list(found[:limit], "/v1/checkout/sessions")
        page["has_more"] = len(found) > limit
        return page

    def expire_checkout_session(self, session_id: str) -> dict:
        session = self.get("checkout.session", session_id)
        if session["status"] != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a '
                f'status of "{session["status"]}".'
            )
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session, stream=session_id)
        return session

    def expire_due_sessions(self) -> int:
        """Sessions past `expires_at` expire (Stripe does it within about an hour; we do it at once)."""
        now = self.now()
        due = [
            sid
            for sid in self._sessions
            if self.objects[sid]["status"] == "open" and self.objects[sid]["expires_at"] <= now
        ]
        for sid in due:
            self.expire_checkout_session(sid)
        return len(due)

    def complete_checkout_session(self, session_id: str, payment: str = "card") -> dict:
        """The buyer paid on the hosted page. Paying a completed session again changes nothing.

        `payment`: "card" settles at once; "delayed_success" / "delayed_failure" act as a bank debit does:
        the session completes unpaid, then `checkout.session.async_payment_succeeded` / `_failed` follows
        (days later at Stripe, at once here; same stream, so always after the completion).
        """
        if payment not in PAYMENT_OUTCOMES:
            raise invalid(f"Invalid payment: must be one of {', '.join(PAYMENT_OUTCOMES)}", param="payment")
        session = self.get("checkout.session", session_id)
        if session["status"] == "complete":
            return session
        if session["status"] != "open":
            raise invalid("This Checkout Session is no longer active.", code="checkout_session_expired")
        if payment != "card" and session["mode"] != "payment":
            raise invalid("The stand-in offers delayed payment methods for one-time payments only.", "payment")
        private = self._private_session_data[session_id]
        email = session["customer_email"]
        if session["customer"] is not None:
            email = self.objects[session["customer"]].get("email") or email
        email = email or "buyer@example.test"
        details = {"address": None, "email": email, "name": None, "phone": None, "tax_exempt": "none"}
        if session["mode"] == "payment":
            intent = self._payment_intent(
                session["amount_total"],
                session["currency"],
                customer=session["customer"],
                metadata=private["payment_intent_metadata"],
                description=None,
            )
            if payment == "card":
                self._settle(intent, email)
            session.update(
                status="complete", payment_status="paid" if payment == "card" else "unpaid", url=None,
                customer_details=details, payment_intent=intent["id"],
            )  # fmt: skip
            self._emit("checkout.session.completed", session, stream=intent["id"])
            if payment == "delayed_success":
                self._settle(intent, email)
                session["payment_status"] = "paid"
                self._emit("checkout.session.async_payment_succeeded", session, stream=intent["id"])
            elif payment == "delayed_failure":
                intent.update(
                    status="requires_payment_method",
                    last_payment_error={
                        "type": "invalid_request_error",
                        "code": "payment_method_provider_decline",
                        "message": "The bank declined the debit.",
                    },
                )
                self._emit("checkout.session.async_payment_failed", session, stream=intent["id"])
            return session
        customer_id = session["customer"] or self._create_customer(email)["id"]
        subscription = self._create_subscription(
            customer_id, self._line_items[session_id], private["subscription_metadata"], session["currency"]
        )
        invoice = self._paid_invoice(subscription, "subscription_create")
        session.update(
            status="complete", payment_status="paid", url=None, customer_details=details,
            customer=customer_id, subscription=subscription["id"], invoice=invoice["id"],
        )  # fmt: skip
        stream = subscription["id"]
        self._emit("checkout.session.completed", session, stream=stream)
        self._emit("customer.subscription.created", subscription, stream=stream)
        self._emit("invoice.paid", invoice, stream=stream)
        return session

    # --- customers, payments, refunds ---------------------------------------------------------------------------
    def _create_customer(self, email: str | None, metadata: dict | None = None, name: str | None = None) -> dict:
        return self._put(
            {
                "id": new_id("cus", 14),
                "object": "customer",
                "created": self.now(),
                "email": email,
                "livemode": False,
                "metadata": metadata or {},
                "name": name,
            }
        )

    def create_customer(self, params: dict) -> dict:
        forms.reject_unknown(params, {"email", "name", "metadata", "description", "phone", "address"})
        return self._create_customer(
            forms.get_str(params, "email", max_length=512),
            forms.get_metadata(params),
            forms.get_str(params, "name", max_length=256),
        )

    def _payment_intent(
        self, amount: int, currency: str, *, customer: str | None, metadata: dict, description: str | None
    ) -> dict:
        return self._put(
            {
                "id": new_id("pi"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "created": self.now(),
                "currency": currency,
                "customer": customer,
                "description": description,
                "last_payment_error": None,
                "latest_charge": None,
                "livemode": False,
                "metadata": dict(metadata),
                "payment_method_types": ["card"],
                "receipt_email": None,
                "status": "processing",
            }
        )

    def _settle(self, intent: dict, email: str) -> dict:
        """The money arrived: a succeeded charge for the whole intent."""
        charge = self._put(
            {
                "id": new_id("ch"),
                "object": "charge",
                "amount": intent["amount"],
                "amount_captured": intent["amount"],
                "amount_refunded": 0,
                "billing_details": {"address": None, "email": email, "name": None, "phone": None},
                "captured": True,
                "created": self.now(),
                "currency": intent["currency"],
                "customer": intent["customer"],
                "description": intent["description"],
                "livemode": False,
                "metadata": dict(intent["metadata"]),
                "paid": True,
                "payment_intent": intent["id"],
                "refunded": False,
                "status": "succeeded",
            }
        )
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"])
        return charge

    def create_refund(self, params: dict) -> dict:
        forms.reject_unknown(
            params,
            {"amount", "charge", "payment_intent", "metadata", "reason", "instructions_email", "origin",
             "refund_application_fee", "reverse_transfer"},
        )  # fmt: skip
        charge_id = forms.get_str(params, "charge")
        intent_id = forms.get_str(params, "payment_intent")
        if charge_id and intent_id:
            raise invalid("You can only specify one of these parameters: charge, payment_intent.", "payment_intent")
        if intent_id:
            intent = self.get("payment_intent", intent_id, "payment_intent")
            if intent["latest_charge"] is None:
                raise invalid(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                    param="payment_intent",
                    code="payment_intent_unexpected_state",
                )
            charge = self.objects[intent["latest_charge"]]
        elif charge_id:
            charge = self.get("charge", charge_id, "charge")
        else:
            raise invalid("One of the following params should be provided for this request: payment_intent or charge.")
        reason = forms.get_str(params, "reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer", param="reason"
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", param="charge", code="charge_already_refunded"
            )
        amount = forms.get_int(params, "amount", minimum=1)
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded amount on "
                f"charge ({format_amount(remaining, charge['currency'])})",
                param="amount",
                code="amount_too_large",
            )
        refund = self._put(
            {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "created": self.now(),
                "currency": charge["currency"],
                "metadata": forms.get_metadata(params) or {},
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "succeeded",
            }
        )
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("charge.refunded", charge, stream=charge["payment_intent"], previous=previous)
        return refund

    # --- subscriptions and invoices -----------------------------------------------------------------------------
    def _create_subscription(self, customer_id: str, items: list[dict], metadata: dict, currency: str) -> dict:
        now = self.now()
        recurring = items[0]["price"]["recurring"]
        end = add_interval(now, recurring["interval"], recurring["interval_count"])
        sub_id = new_id("sub")
        subscription = {
            "id": sub_id,
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": currency,
            "current_period_end": end,
            "current_period_start": now,
            "customer": customer_id,
            "ended_at": None,
            "items": as_list(
                [
                    {
                        "id": new_id("si", 14),
                        "object": "subscription_item",
                        "created": now,
                        "current_period_end": end,
                        "current_period_start": now,
                        "metadata": {},
                        "price": copy.deepcopy(item["price"]),
                        "quantity": item["quantity"],
                        "subscription": sub_id,
                    }
                    for item in items
                ],
                f"/v1/subscription_items?subscription={sub_id}",
            ),
            "latest_invoice": None,
            "livemode": False,
            "metadata": dict(metadata),
            "start_date": now,
            "status": "active",
        }
        self._periods[sub_id] = 1
        return self._put(subscription)

    def _set_period(self, subscription: dict, start: int, end: int) -> None:
        subscription["current_period_start"], subscription["current_period_end"] = start, end
        for item in subscription["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end

    def _paid_invoice(self, subscription: dict, billing_reason: str) -> dict:
        customer = self.objects[subscription["customer"]]
        start, end = subscription["current_period_start"], subscription["current_period_end"]
        lines = [
            {
                "id": new_id("il"),
                "object": "line_item",
                "amount": item["price"]["unit_amount"] * item["quantity"],
                "currency": subscription["currency"],
                "description": f"{item['quantity']} x {self.objects[item['price']['product']]['name']}",
                "period": {"start": start, "end": end},
                "pricing": {"type": "price_details", "price_details": {"price": item["price"]["id"]}},
                "quantity": item["quantity"],
            }
            for item in subscription["items"]["data"]
        ]
        total = sum(line["amount"] for line in lines)
        intent = self._payment_intent(
            total,
            subscription["currency"],
            customer=customer["id"],
            metadata={},
            description="Subscription creation" if billing_reason == "subscription_create" else "Subscription update",
        )
        charge = self._settle(intent, customer.get("email") or "")
        invoice_id = new_id("in")
        invoice = self._put(
            {
                "id": invoice_id,
                "object": "invoice",
                "amount_due": total,
                "amount_paid": total,
                "amount_remaining": 0,
                "billing_reason": billing_reason,
                "charge": charge["id"],
                "collection_method": "charge_automatically",
                "created": self.now(),
                "currency": subscription["currency"],
                "customer": customer["id"],
                "customer_email": customer.get("email"),
                "lines": as_list(lines, f"/v1/invoices/{invoice_id}/lines"),
                "livemode": False,
                "metadata": {},
                "paid": True,
                "parent": {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(subscription["metadata"]),
                        "subscription": subscription["id"],
                    },
                },
                "payment_intent": intent["id"],
                "period_end": end,
                "period_start": start,
                "status": "paid",
                "status_transitions": {"finalized_at": self.now(), "paid_at": self.now()},
                "subscription": subscription["id"],
                "subtotal": total,
                "total": total,
            }
        )
        subscription["latest_invoice"] = invoice_id
        return invoice

    def update_subscription(self, subscription_id: str, params: dict) -> dict:
        subscription = self.get("subscription", subscription_id)
        forms.reject_unknown(
            params,
            {"cancel_at_period_end", "metadata", "cancellation_details", "proration_behavior", "description"},
        )
        cancel = forms.get_bool(params, "cancel_at_period_end")
        metadata = forms.get_metadata(params)
        if subscription["status"] == "canceled" and cancel is not None:
            raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
        previous: dict[str, Any] = {}
        if cancel is not None and cancel != subscription["cancel_at_period_end"]:
            previous.update(
                cancel_at_period_end=subscription["cancel_at_period_end"], cancel_at=subscription["cancel_at"]
            )
            subscription["cancel_at_period_end"] = cancel
            subscription["cancel_at"] = subscription["current_period_end"] if cancel else None
            subscription["canceled_at"] = self.now() if cancel else None
        if metadata is not None:
            merged = {**subscription["metadata"], **metadata}
            merged = {k: v for k, v in merged.items() if v != ""}  # an empty value unsets the key
            if merged != subscription["metadata"]:
                previous["metadata"] = subscription["metadata"]
                subscription["metadata"] = merged
        if previous:
            self._emit("customer.subscription.updated", subscription, stream=subscription_id, previous=previous)
        return subscription

    def cancel_subscription(self, subscription_id: str, params: dict) -> dict:
        subscription = self.get("subscription", subscription_id)
        forms.reject_unknown(params, {"invoice_now", "prorate", "cancellation_details"})
        if subscription["status"] == "canceled":
            raise invalid(f"No active subscription: {subscription_id} is already canceled.", code="resource_missing")
        self._end_subscription(subscription, self.now())
        return subscription

    def _end_subscription(self, subscription: dict, when: int) -> None:
        subscription.update(status="canceled", ended_at=when, canceled_at=subscription["canceled_at"] or when)
        self._emit("customer.subscription.deleted", subscription, stream=subscription["id"])

    def advance_subscription(self, subscription_id: str, params: dict) -> dict:
        """Test helper, like a test clock: the current period ends now. The subscription renews with a new
        paid invoice, or ends if it was set to cancel at period end."""
        subscription = self.get("subscription", subscription_id)
        forms.reject_unknown(params, set())
        if subscription["status"] == "canceled":
            raise invalid(f"Subscription {subscription_id} is canceled; it has no next period.")
        if subscription["cancel_at_period_end"]:
            self._end_subscription(subscription, subscription["current_period_end"])
            return subscription
        recurring = subscription["items"]["data"][0]["price"]["recurring"]
        count = self._periods[subscription_id]
        anchor = subscription["billing_cycle_anchor"]
        step = recurring["interval_count"]
        start = add_interval(anchor, recurring["interval"], count * step)
        end = add_interval(anchor, recurring["interval"], (count + 1) * step)
        self._periods[subscription_id] = count + 1
        previous = {
            "current_period_end": subscription["current_period_end"],
            "current_period_start": subscription["current_period_start"],
            "latest_invoice": subscription["latest_invoice"],
        }
        self._set_period(subscription, start, end)
        invoice = self._paid_invoice(subscription, "subscription_cycle")
        self._emit("customer.subscription.updated", subscription, stream=subscription_id, previous=previous)
        self._emit("invoice.paid", invoice, stream=subscription_id)
        return subscription

    # --- events -------------------------------------------------------------------------------------------------
    def list_events(self, params: dict) -> dict:
        forms.reject_unknown(params, {"limit", "type", "types", "created", "delivery_success", "ending_before",
                                      "starting_after"})  # fmt: skip
        wanted = params.get("type")
        found = [self.objects[eid] for eid in reversed(self._events) if wanted in (None, self.objects[eid]["type"])]
        return page(created_filter(found, params.get("created")), params, "/v1/events")


__all__ = ["API_VERSION", "ONBOARDING_OUTCOMES", "Store", "StripeError", "add_interval", "format_amount", "new_id"]
