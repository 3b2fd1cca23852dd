"""The stand-in's state on its own, with a clock the test turns: expiry, renewal dates, restart."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import stripe

from devhost.stripe_standin import StripeStandin
from devhost.stripe_standin.errors import StripeError
from devhost.stripe_standin.store import Store
from shared.config import load_settings

JAN_31 = datetime(2027, 1, 31, 12, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store_at(now: float) -> tuple[Store, Clock, list[tuple[str, str]]]:
    clock, events = Clock(now), []
    store = Store(
        public_url="http://standin.test", on_event=lambda e, stream: events.append((e["type"], stream)), clock=clock
    )
    return store, clock, events


def session_params(mode: str = "payment", **extra: object) -> dict:
    price: dict = {"currency": "usd", "unit_amount": "1000", "product_data": {"name": "Plan"}}
    if mode == "subscription":
        price["recurring"] = {"interval": "month"}
    return {"mode": mode, "line_items": [{"price_data": price, "quantity": "1"}], "success_url": "http://x/ok", **extra}


def test_an_open_session_expires_once_its_expires_at_has_passed():
    store, clock, events = store_at(JAN_31)
    session = store.create_checkout_session(session_params(expires_at=str(int(JAN_31) + 3600)))

    clock.now = JAN_31 + 3599
    assert store.expire_due_sessions() == 0
    clock.now = JAN_31 + 3600
    assert store.expire_due_sessions() == 1

    assert session["status"] == "expired"
    assert events == [("checkout.session.expired", session["id"])]
    with pytest.raises(StripeError, match="no longer active"):
        store.complete_checkout_session(session["id"])


def test_monthly_periods_keep_the_anchor_day_clamped_to_short_months():
    store, clock, _ = store_at(JAN_31)
    session = store.complete_checkout_session(store.create_checkout_session(session_params("subscription"))["id"])
    subscription = store.objects[session["subscription"]]
    ends = [subscription["current_period_end"]]
    for _ in range(2):
        clock.now = subscription["current_period_end"]
        store.advance_subscription(subscription["id"], {})
        ends.append(subscription["current_period_end"])

    days = [datetime.fromtimestamp(end, UTC).date().isoformat() for end in ends]
    assert days == ["2027-02-28", "2027-03-31", "2027-04-30"]


def test_sessions_and_payments_survive_a_restart_when_a_state_path_is_given(tmp_path):
    state = tmp_path / "stripe" / "state.json"
    options = {"secret_key": "sk_test_restart", "webhook_secret": "whsec_restart", "state_path": state}
    with StripeStandin(**options) as first:
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": first.base_url})
        paid = client.v1.checkout.sessions.create(session_params())
        httpx.post(f"{paid.url}/pay")
        still_open = client.v1.checkout.sessions.create(session_params())
    with StripeStandin(**options) as second:
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": second.base_url})
        assert client.v1.checkout.sessions.retrieve(paid.id).payment_status == "paid"
        assert client.v1.checkout.sessions.retrieve(still_open.id).status == "open"
        assert client.v1.refunds.create(
            {"payment_intent": client.v1.checkout.sessions.retrieve(paid.id).payment_intent}
        )


def test_a_transfer_replayed_after_a_restart_returns_the_first_one(tmp_path):
    # Stripe keeps idempotency keys for 24 hours: a payout retried after devhost restarted must not pay again.
    state = tmp_path / "stripe" / "state.json"
    options = {"secret_key": "sk_test_restart", "webhook_secret": "whsec_restart", "state_path": state}
    with StripeStandin(**options) as first:
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": first.base_url})
        account = client.v1.accounts.create({"type": "express"})
        link = client.v1.account_links.create(
            {"account": account.id, "type": "account_onboarding", "return_url": "http://shop.test/done"}
        )
        httpx.post(link.url, data={"outcome": "verified"})
        transfer = {"amount": 3500, "currency": "usd", "destination": account.id}
        sent = client.v1.transfers.create(transfer, {"idempotency_key": "payout-7-ana"})
    with StripeStandin(**options) as second:
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": second.base_url})
        assert client.v1.transfers.create(transfer, {"idempotency_key": "payout-7-ana"}).id == sent.id
        assert [t.id for t in client.v1.transfers.list({"destination": account.id}).data] == [sent.id]


def test_devhosts_stand_in_signs_connect_events_with_the_connect_secret(tmp_path):
    settings = load_settings(VAR_DIR=str(tmp_path), STRIPE_CONNECT_WEBHOOK_SECRET="whsec_connect_x")
    standin = StripeStandin.from_settings(
        settings, webhook_url="http://127.0.0.1:9/api/webhooks/stripe",
        connect_webhook_url="http://127.0.0.1:9/api/webhooks/stripe-connect",
    )  # fmt: skip
    assert (standin.connect_webhook_secret, standin.connect_webhook_urls) == (
        "whsec_connect_x",
        ["http://127.0.0.1:9/api/webhooks/stripe-connect"],
    )
    assert standin.webhook_secret == settings.STRIPE_WEBHOOK_SECRET != "whsec_connect_x"
