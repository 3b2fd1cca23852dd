"""Reconciliation: a payment whose webhook never arrived is still applied, exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import stripe

from devhost.stripe_standin import StripeStandin
from functions.checkout.catalogue import apply_catalogue_event
from functions.checkout.reconcile import reconcile_stripe_events
from shared.payments import StripeGateway, get_payment_gateway, set_payment_gateway, stripe_client_from_settings
from tests.fixtures.checkout import approved, checkout_settings, free_port, message
from tests.integration.test_checkout_with_standin import _json, _pay

LINE_PRICE = {"currency": "usd", "unit_amount": 100, "product_data": {"name": "x"}}

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def unreachable_webhooks(tmp_path, checkout_app):
    """The stand-in, with its webhook endpoint pointing at a port nobody listens on (an outage)."""
    standin = StripeStandin(
        secret_key=checkout_app.settings.STRIPE_SECRET_KEY,
        webhook_secret=checkout_app.settings.STRIPE_WEBHOOK_SECRET,
        webhook_urls=[f"http://127.0.0.1:{free_port()}/api/webhooks/stripe"],
        retry_delays=(),
    )
    base = await asyncio.to_thread(standin.start)
    settings = checkout_settings(tmp_path, STRIPE_API_BASE=base)
    http = stripe.HTTPXClient()
    client = stripe_client_from_settings(settings, http)
    set_payment_gateway(StripeGateway(client))
    try:
        yield checkout_app, client
    finally:
        set_payment_gateway(None)
        await asyncio.to_thread(standin.stop)
        await http.close_async()


async def test_a_paid_order_whose_webhook_never_came_is_licensed_by_reconciliation_once(unreachable_webhooks):
    app, _ = unreachable_webhooks
    image_id = uuid.uuid4()
    await apply_catalogue_event(app.runtime.db, message(approved(image_id)))
    bob = app.token("bob")
    await app.call("add_cart_item", "POST", "cart/items", token=bob, json_body={"image_id": str(image_id)})
    started = _json(await app.call("checkout", "POST", "checkout", token=bob))
    order_id = started["order_id"]
    await _pay(started["checkout_url"])
    await asyncio.sleep(0.5)
    status = "select status from checkout.orders where id = $1"
    assert await app.runtime.db.pool.fetchval(status, order_id) == "pending"  # nothing was delivered

    first = await reconcile_stripe_events(app.runtime.db, get_payment_gateway(app.settings), app.settings)
    again = await reconcile_stripe_events(app.runtime.db, get_payment_gateway(app.settings), app.settings)

    assert await app.runtime.db.pool.fetchval(status, order_id) == "paid"
    assert first.applied >= 1 and again.applied == 0
    (license_,) = _json(await app.call("get_licenses", "GET", "licenses", token=bob))["licenses"]
    assert license_["usable"] is True
    completed = await app.runtime.db.pool.fetchval("select count(*) from bus.outbox where subject = 'order.completed'")
    assert completed == 1


async def test_the_stand_in_pages_through_events_like_stripe(unreachable_webhooks):
    _, client = unreachable_webhooks
    for _ in range(5):
        session = await client.v1.checkout.sessions.create_async(
            {
                "mode": "payment",
                "line_items": [{"price_data": LINE_PRICE, "quantity": 1}],
                "success_url": "http://localhost/ok",
                "cancel_url": "http://localhost/no",
            }
        )
        await client.v1.checkout.sessions.expire_async(session.id)
    page = await client.v1.events.list_async({"limit": 2, "type": "checkout.session.expired"})
    ids = [event.id async for event in page.auto_paging_iter()]
    assert len(ids) == len(set(ids)) == 5
