"""The Stripe webhook: authentic events only, each applied exactly once, in any order, under any concurrency.

Events are signed with Stripe's scheme by the test helper and delivered to the real
function entry point; effects are read back from Postgres and the outbox.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from functions.checkout.catalogue import apply_catalogue_event
from functions.checkout.stripe_events import forget_old_events
from tests.fixtures.checkout import (
    approved,
    charge_object,
    message,
    pricing,
    session_object,
    sign_webhook,
    stripe_event,
)

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _json(response):
    return json.loads(response.get_body())


async def _pending_order(app, buyer="bob", images=2):
    """A pending order placed through the real cart and checkout routes: (order_id, amount, image_ids)."""
    image_ids = [uuid.uuid4() for _ in range(images)]
    for image_id in image_ids:
        await apply_catalogue_event(app.runtime.db, message(approved(image_id)))
    await apply_catalogue_event(app.runtime.db, message(pricing(1, standard=1500, enhanced=9900)))
    token = app.token(buyer)
    for image_id in image_ids:
        await app.call("add_cart_item", "POST", "cart/items", token=token, json_body={"image_id": str(image_id)})
    out = _json(await app.call("checkout", "POST", "checkout", token=token))
    return uuid.UUID(out["order_id"]), out["total"]["amount_minor"], image_ids


async def _deliver(app, event, **sign_kwargs):
    payload = json.dumps(event).encode()
    return await app.webhook(payload, sign_webhook(payload, **sign_kwargs))


async def _state(app, order_id):
    pool = app.runtime.db.pool
    return {
        "status": await pool.fetchval("select status from checkout.orders where id = $1", order_id),
        "licenses": await pool.fetchval("select count(*) from checkout.licenses where order_id = $1", order_id),
        "usable": await pool.fetchval(
            "select count(*) from checkout.licenses where order_id = $1 and revoked_at is null", order_id
        ),
        "events": [
            r["subject"] for r in await pool.fetch("select subject from bus.outbox where topic = 'orders' order by seq")
        ],
    }


async def test_a_hundred_concurrent_deliveries_of_one_event_pay_the_order_once(checkout_app):
    app = checkout_app
    order_id, amount, image_ids = await _pending_order(app, images=3)
    payload = json.dumps(stripe_event("checkout.session.completed", session_object(order_id, amount))).encode()
    signature = sign_webhook(payload)

    responses = await asyncio.gather(*(app.webhook(payload, signature) for _ in range(100)))

    assert [r.status_code for r in responses] == [200] * 100
    outcomes = sorted(_json(r)["outcome"] for r in responses)
    assert outcomes == ["duplicate"] * 99 + ["paid"]
    state = await _state(app, order_id)
    assert state["status"] == "paid"
    assert state["licenses"] == state["usable"] == 3
    assert sorted(state["events"]) == ["license.issued"] * 3 + ["order.completed"]
    completed = await app.runtime.db.pool.fetchval("select body from bus.outbox where subject = 'order.completed'")
    assert completed["order_id"] == str(order_id)
    assert completed["amount_minor"] == amount
    assert sorted(completed["image_ids"]) == sorted(str(i) for i in image_ids)
    # The bought images left the cart.
    assert _json(await app.call("get_cart", "GET", "cart", token=app.token("bob")))["items"] == []


async def test_a_later_redelivery_changes_nothing(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    event = stripe_event("checkout.session.completed", session_object(order_id, amount))
    assert _json(await _deliver(app, event))["outcome"] == "paid"
    before = await _state(app, order_id)
    again = await _deliver(app, event)  # Stripe retries with a fresh signature and timestamp
    assert again.status_code == 200 and _json(again)["outcome"] == "duplicate"
    assert await _state(app, order_id) == before


def _forged(payload: bytes) -> tuple[bytes, str | None]:
    return payload.replace(b'"paid"', b'"paid" '), sign_webhook(payload)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_forged, id="forged-signature"),
        pytest.param(lambda p: (p, sign_webhook(p, secret="whsec_someone_else")), id="wrong-secret"),
        pytest.param(lambda p: (p, sign_webhook(p, timestamp=int(time.time()) - 301)), id="stale-timestamp"),
        pytest.param(lambda p: (p, None), id="missing-header"),
        pytest.param(lambda p: (p, "t=abc,v0=zzz"), id="malformed-header"),
        pytest.param(lambda p: (b"{not json", sign_webhook(b"{not json")), id="malformed-json"),
        pytest.param(lambda p: (b'{"id": 1}', sign_webhook(b'{"id": 1}')), id="not-an-event"),
    ],
)
async def test_an_unauthentic_or_unreadable_webhook_is_refused_and_changes_nothing(checkout_app, tamper):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    payload = json.dumps(stripe_event("checkout.session.completed", session_object(order_id, amount))).encode()
    body, signature = tamper(payload)

    response = await app.webhook(body, signature)

    assert response.status_code == 400
    # A missing header is refused at the edge (the route declares it required), the rest by verification.
    expected = "/missing-header" if signature is None else "/invalid-webhook"
    assert _json(response)["type"].endswith(expected)
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.stripe_events") == 0
    assert await _state(app, order_id) == {"status": "pending", "licenses": 0, "usable": 0, "events": []}


async def test_a_signature_within_the_tolerance_is_accepted(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    event = stripe_event("checkout.session.completed", session_object(order_id, amount))
    response = await _deliver(app, event, timestamp=int(time.time()) - 240)
    assert _json(response)["outcome"] == "paid"


@pytest.mark.parametrize(
    ("paid_amount", "currency"),
    [pytest.param(-1, "usd", id="less"), pytest.param(+1, "usd", id="more"), pytest.param(0, "eur", id="currency")],
)
async def test_a_payment_that_does_not_match_the_order_flags_it_and_issues_no_license(
    checkout_app, paid_amount, currency
):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    event = stripe_event(
        "checkout.session.completed", session_object(order_id, amount + paid_amount, currency=currency)
    )
    assert _json(await _deliver(app, event))["outcome"] == "flagged"
    assert await _state(app, order_id) == {"status": "flagged", "licenses": 0, "usable": 0, "events": []}
    reason = await app.runtime.db.pool.fetchval("select status_reason from checkout.orders")
    assert str(amount) in reason


async def test_a_refund_before_the_completion_event_leaves_the_order_refunded_without_licenses(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    refund = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount, order_id=str(order_id)))
    completed = stripe_event("checkout.session.completed", session)

    assert _json(await _deliver(app, refund))["outcome"] == "refunded-before-completion"
    assert _json(await _deliver(app, completed))["outcome"] == "already-refunded"

    assert await _state(app, order_id) == {"status": "refunded", "licenses": 0, "usable": 0, "events": []}
    assert _json(await app.call("get_licenses", "GET", "licenses", token=app.token("bob")))["licenses"] == []


async def test_a_refund_that_names_no_order_is_matched_when_the_completion_arrives(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    refund = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount))

    assert _json(await _deliver(app, refund))["outcome"] == "refund-recorded-for-later"
    assert _json(await _deliver(app, stripe_event("checkout.session.completed", session)))["outcome"] == (
        "refunded-before-completion"
    )
    assert await _state(app, order_id) == {"status": "refunded", "licenses": 0, "usable": 0, "events": []}


async def test_a_refund_after_payment_revokes_the_licenses_and_announces_it(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    await _deliver(app, stripe_event("checkout.session.completed", session))
    # The charge carries no order id: it is found by its payment intent.
    refund = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount))
    assert _json(await _deliver(app, refund))["outcome"] == "refunded"

    state = await _state(app, order_id)
    assert (state["status"], state["licenses"], state["usable"]) == ("refunded", 2, 0)
    assert state["events"][-1] == "order.refunded"
    refunded = await app.runtime.db.pool.fetchval("select body from bus.outbox where subject = 'order.refunded'")
    assert (refunded["order_id"], refunded["amount_minor"]) == (str(order_id), amount)
    licenses = _json(await app.call("get_licenses", "GET", "licenses", token=app.token("bob")))["licenses"]
    assert [lic["usable"] for lic in licenses] == [False, False]


async def test_a_partial_refund_keeps_the_licenses(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    await _deliver(app, stripe_event("checkout.session.completed", session))
    partial = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount, refunded=False))
    assert _json(await _deliver(app, partial))["outcome"] == "partially-refunded"
    state = await _state(app, order_id)
    assert (state["status"], state["usable"]) == ("paid", 2)
    assert "order.refunded" not in state["events"]


async def test_a_partial_refund_that_names_no_order_and_overtakes_the_completion_is_kept(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    partial = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount, refunded=False))

    assert _json(await _deliver(app, partial))["outcome"] == "refund-recorded-for-later"
    assert _json(await _deliver(app, stripe_event("checkout.session.completed", session)))["outcome"] == "paid"

    state = await _state(app, order_id)
    assert (state["status"], state["usable"]) == ("paid", 2)
    refunded = await app.runtime.db.pool.fetchval(
        "select amount_refunded_minor from checkout.orders where id = $1", order_id
    )
    assert refunded == amount // 2
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.unmatched_refunds") == 0


async def test_a_delayed_payment_is_licensed_only_when_it_succeeds(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    unpaid = session_object(order_id, amount, payment_status="unpaid")
    assert _json(await _deliver(app, stripe_event("checkout.session.completed", unpaid)))["outcome"] == (
        "awaiting-payment"
    )
    assert (await _state(app, order_id))["licenses"] == 0
    succeeded = {**unpaid, "payment_status": "paid", "status": "complete"}
    event = stripe_event("checkout.session.async_payment_succeeded", succeeded)
    assert _json(await _deliver(app, event))["outcome"] == "paid"
    assert (await _state(app, order_id))["usable"] == 2


@pytest.mark.parametrize(
    ("event_type", "final"),
    [("checkout.session.async_payment_failed", "failed"), ("checkout.session.expired", "expired")],
)
async def test_a_failed_or_expired_session_closes_the_pending_order(checkout_app, event_type, final):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    unpaid = session_object(order_id, amount, payment_status="unpaid")
    assert _json(await _deliver(app, stripe_event(event_type, unpaid)))["outcome"] == final
    assert await _state(app, order_id) == {"status": final, "licenses": 0, "usable": 0, "events": []}


async def test_an_expiry_arriving_after_payment_does_not_undo_it(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    session = session_object(order_id, amount)
    await _deliver(app, stripe_event("checkout.session.completed", session))
    expired = stripe_event("checkout.session.expired", {**session, "status": "expired", "payment_status": "unpaid"})
    assert _json(await _deliver(app, expired))["outcome"] == "already-paid"
    assert (await _state(app, order_id))["status"] == "paid"


async def test_an_unknown_event_type_is_acknowledged_and_recorded(checkout_app):
    app = checkout_app
    response = await _deliver(app, stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200
    assert _json(response)["outcome"] == "ignored"
    assert await app.runtime.db.pool.fetchval("select outcome from checkout.stripe_events") == "ignored"


async def test_completion_and_refund_racing_each_other_always_end_refunded(checkout_app):
    app = checkout_app
    orders = [await _pending_order(app, images=1) for _ in range(10)]
    deliveries = []
    for order_id, amount, _ in orders:
        session = session_object(order_id, amount)
        # The refund names no order, so the two events meet only through the payment intent.
        refund = stripe_event("charge.refunded", charge_object(session["payment_intent"], amount))
        deliveries += [_deliver(app, stripe_event("checkout.session.completed", session)), _deliver(app, refund)]

    responses = await asyncio.gather(*deliveries)

    assert {r.status_code for r in responses} == {200}
    for order_id, _, _ in orders:
        state = await _state(app, order_id)
        assert (state["status"], state["usable"]) == ("refunded", 0)
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.unmatched_refunds") == 0


async def test_event_ids_are_remembered_longer_than_any_redelivery(checkout_app):
    app = checkout_app
    order_id, amount, _ = await _pending_order(app)
    event = stripe_event("checkout.session.completed", session_object(order_id, amount))
    await _deliver(app, event)
    pool = app.runtime.db.pool
    await pool.execute("update checkout.stripe_events set received_at = now() - interval '4 days'")
    assert await forget_old_events(app.runtime.db) == 0  # Stripe's 3-day retry window is long past: still kept
    assert _json(await _deliver(app, event))["outcome"] == "duplicate"
    await pool.execute("update checkout.stripe_events set received_at = now() - interval '91 days'")
    assert await forget_old_events(app.runtime.db) == 1


async def test_a_delayed_payment_succeeding_while_it_is_refunded_ends_refunded_without_errors(checkout_app):
    app = checkout_app
    orders = [await _pending_order(app, images=1) for _ in range(8)]
    deliveries = []
    for order_id, amount, _ in orders:
        unpaid = session_object(order_id, amount, payment_status="unpaid")
        await _deliver(app, stripe_event("checkout.session.completed", unpaid))  # the order now knows its intent
        succeeded = stripe_event("checkout.session.async_payment_succeeded", {**unpaid, "payment_status": "paid"})
        refund = stripe_event("charge.refunded", charge_object(unpaid["payment_intent"], amount))
        deliveries += [_deliver(app, succeeded), _deliver(app, refund)]

    responses = await asyncio.gather(*deliveries)

    assert {r.status_code for r in responses} == {200}  # no deadlock between the two lock orders
    for order_id, _, _ in orders:
        state = await _state(app, order_id)
        assert (state["status"], state["usable"]) == ("refunded", 0)
