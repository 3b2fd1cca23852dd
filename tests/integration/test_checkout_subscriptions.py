"""Subscriptions: bought through Stripe Checkout, kept current from Stripe's events, spent one download at a time."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from functions.checkout.catalogue import apply_catalogue_event
from tests.fixtures.checkout import (
    approved,
    invoice_object,
    message,
    sign_webhook,
    stripe_event,
    subscription_object,
)

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _json(response):
    return json.loads(response.get_body())


async def _deliver(app, event):
    payload = json.dumps(event).encode()
    response = await app.webhook(payload, sign_webhook(payload))
    assert response.status_code == 200, response.get_body()
    return _json(response)["outcome"]


async def _subscribe(app, buyer="bob", plan="basic-10", sub_id=None):
    """A paid subscription as Stripe reports it: subscription created, then its first invoice paid."""
    sub_id = sub_id or f"sub_{uuid.uuid4().hex[:14]}"
    now = int(time.time())
    await _deliver(app, stripe_event("customer.subscription.created", subscription_object(sub_id, buyer, plan)))
    await _deliver(app, stripe_event("invoice.paid", invoice_object(sub_id, created=now, buyer_id=buyer, plan=plan)))
    return sub_id


async def _subscription(app, buyer="bob"):
    return await app.call("get_subscription", "GET", "subscription", token=app.token(buyer))


async def _license(app, image_id, buyer="bob", license_type="standard"):
    return await app.call(
        "license_image",
        "POST",
        f"images/{image_id}/license",
        token=app.token(buyer),
        json_body={"license_type": license_type},
        route_params={"id": str(image_id)},
    )


async def _on_sale(app, count):
    ids = [uuid.uuid4() for _ in range(count)]
    for image_id in ids:
        await apply_catalogue_event(app.runtime.db, message(approved(image_id)))
    return ids


async def test_subscribing_opens_a_monthly_stripe_checkout_for_the_plan(checkout_app, fake_stripe):
    app = checkout_app
    response = await app.call(
        "subscription_checkout", "POST", "subscriptions/checkout", token=app.token("bob"), json_body={"plan": "pro-750"}
    )
    assert response.status_code == 201, response.get_body()
    assert _json(response)["checkout_url"].startswith(fake_stripe.base_url)
    (sent,) = fake_stripe.requests
    params = sent["params"]
    assert params["mode"] == "subscription"
    (item,) = params["line_items"].values()
    plan = json.loads(app.settings.SUBSCRIPTION_PLANS)["pro-750"]
    assert item["price_data"]["recurring"] == {"interval": "month"}
    assert item["price_data"]["unit_amount"] == str(plan["amount_minor"])
    assert params["subscription_data"]["metadata"]["buyer_id"] == "bob"
    assert params["subscription_data"]["metadata"]["plan"] == "pro-750"
    assert sent["headers"]["idempotency-key"].startswith("subscribe-")


async def test_an_unknown_plan_is_refused_naming_the_field(checkout_app, fake_stripe):
    app = checkout_app
    response = await app.call(
        "subscription_checkout", "POST", "subscriptions/checkout", token=app.token("bob"), json_body={"plan": "gold"}
    )
    assert response.status_code == 422
    assert [e["name"] for e in _json(response)["errors"]] == ["plan"]
    assert fake_stripe.requests == []
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.subscription_checkouts") == 0


async def test_a_paid_invoice_fills_the_allotment_of_the_plan(checkout_app):
    app = checkout_app
    assert (await _subscription(app)).status_code == 404
    sub_id = await _subscribe(app, plan="basic-10")
    body = _json(await _subscription(app))
    assert (body["id"], body["plan"], body["status"], body["allotment"], body["remaining"]) == (
        sub_id,
        "basic-10",
        "active",
        10,
        10,
    )
    assert body["current_period_end"] is not None


async def test_a_buyer_with_a_live_plan_cannot_open_a_second_one_and_be_billed_twice(checkout_app, fake_stripe):
    app = checkout_app
    await _subscribe(app, plan="basic-10")

    response = await app.call(
        "subscription_checkout", "POST", "subscriptions/checkout", token=app.token("bob"), json_body={"plan": "pro-750"}
    )

    assert response.status_code == 409 and _json(response)["type"].endswith("/already-subscribed")
    assert fake_stripe.requests == []  # no second payment page was opened


async def test_the_invoice_may_arrive_before_the_subscription_itself(checkout_app):
    app = checkout_app
    sub_id = "sub_early_invoice"
    now = int(time.time())
    invoice = invoice_object(sub_id, created=now, buyer_id="bob", plan="basic-10")
    assert await _deliver(app, stripe_event("invoice.paid", invoice)) == "allotment-refilled"
    created = stripe_event("customer.subscription.created", subscription_object(sub_id, "bob", "basic-10"))
    assert await _deliver(app, created) == "subscription-updated"
    body = _json(await _subscription(app))
    assert (body["status"], body["remaining"]) == ("active", 10)


async def test_fifty_concurrent_license_requests_against_ten_downloads_give_exactly_ten_licenses(checkout_app):
    app = checkout_app
    await _subscribe(app, plan="basic-10")
    images = await _on_sale(app, 50)

    responses = await asyncio.gather(*(_license(app, image_id) for image_id in images))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [402] * 40
    refused = {_json(r)["type"].rsplit("/", 1)[1] for r in responses if r.status_code == 402}
    assert refused == {"allotment-used-up"}
    pool = app.runtime.db.pool
    assert await pool.fetchval("select remaining from checkout.subscriptions") == 0
    assert await pool.fetchval("select count(*) from checkout.licenses") == 10
    assert await pool.fetchval("select count(*) from bus.outbox where subject = 'license.issued'") == 10


async def test_licensing_an_image_again_takes_no_second_download(checkout_app):
    app = checkout_app
    await _subscribe(app)
    (image,) = await _on_sale(app, 1)
    first = await _license(app, image)
    again = await _license(app, image)
    assert (first.status_code, again.status_code) == (201, 200)
    assert _json(first)["id"] == _json(again)["id"]
    assert _json(await _subscription(app))["remaining"] == 9


async def test_each_new_paid_invoice_refills_and_a_late_old_one_does_not(checkout_app):
    app = checkout_app
    sub_id = await _subscribe(app)
    for image in await _on_sale(app, 3):
        await _license(app, image)
    assert _json(await _subscription(app))["remaining"] == 7

    later = int(time.time()) + 30 * 86400
    assert await _deliver(app, stripe_event("invoice.paid", invoice_object(sub_id, created=later))) == (
        "allotment-refilled"
    )
    assert _json(await _subscription(app))["remaining"] == 10
    (image,) = await _on_sale(app, 1)
    await _license(app, image)
    old = stripe_event("invoice.paid", invoice_object(sub_id, created=later - 86400))
    assert await _deliver(app, old) == "invoice-stale"
    assert _json(await _subscription(app))["remaining"] == 9


async def test_a_cancelled_subscription_licenses_nothing_and_stays_cancelled(checkout_app):
    app = checkout_app
    sub_id = await _subscribe(app)
    deleted = stripe_event(
        "customer.subscription.deleted", subscription_object(sub_id, "bob", "basic-10", status="canceled")
    )
    assert await _deliver(app, deleted) == "subscription-canceled"
    stale = stripe_event(
        "customer.subscription.updated",
        subscription_object(sub_id, "bob", "basic-10", status="active"),
        created=deleted["created"] - 60,
    )
    assert await _deliver(app, stale) == "subscription-stale-event"
    (image,) = await _on_sale(app, 1)
    refused = await _license(app, image)
    assert refused.status_code == 402
    assert _json(refused)["type"].endswith("/no-subscription")
    assert _json(await _subscription(app))["status"] == "canceled"


async def test_without_a_subscription_licensing_is_refused(checkout_app):
    app = checkout_app
    (image,) = await _on_sale(app, 1)
    response = await _license(app, image)
    assert response.status_code == 402
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.licenses") == 0


async def test_the_checkout_session_ties_a_subscription_to_its_buyer(checkout_app, fake_stripe):
    app = checkout_app
    await app.call(
        "subscription_checkout",
        "POST",
        "subscriptions/checkout",
        token=app.token("bob"),
        json_body={"plan": "basic-10"},
    )
    session_id = await app.runtime.db.pool.fetchval("select stripe_session_id from checkout.subscription_checkouts")
    session = {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "payment_status": "paid",
        "status": "complete",
        "amount_total": 4900,
        "currency": "usd",
        "metadata": {},  # the owner is known from our own record of the checkout
        "subscription": "sub_from_session",
        "customer": "cus_bob",
    }
    assert await _deliver(app, stripe_event("checkout.session.completed", session)) == "subscription-linked"
    bare = invoice_object("sub_from_session", created=int(time.time()))  # no metadata either
    assert await _deliver(app, stripe_event("invoice.paid", bare)) == "allotment-refilled"
    assert _json(await _subscription(app))["remaining"] == 10
