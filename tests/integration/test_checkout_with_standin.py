"""The checkout service against the local Stripe stand-in: the real SDK creates sessions there, a buyer
pays on its hosted page, and its signed webhooks reach the real function entry point over HTTP.

This is the money path with nothing of ours replaced: only the catalogue is seeded from events
instead of coming through the image pipeline (that is the e2e test's job).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import azure.functions as func
import httpx
import pytest
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions.checkout.catalogue import apply_catalogue_event
from shared.payments import StripeGateway, set_payment_gateway, stripe_client_from_settings
from shared.storage import ORIGINALS
from tests.fixtures.checkout import CheckoutApp, approved, checkout_settings, free_port, message

standin_module = pytest.importorskip("devhost.stripe_standin")

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def standin_app(tmp_path, checkout_app: CheckoutApp) -> AsyncIterator[tuple[CheckoutApp, stripe.StripeClient]]:
    """checkout_app, but paying through the stand-in, whose webhooks reach the stripe_webhook function."""
    app = checkout_app
    port = free_port()

    async def webhook(request: Request) -> Response:
        req = func.HttpRequest(
            "POST",
            str(request.url),
            headers=dict(request.headers),
            body=await request.body(),
        )
        response = await app.functions["stripe_webhook"].get_user_function()(req)
        return Response(response.get_body(), status_code=response.status_code)

    receiver = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/api/webhooks/stripe", webhook, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(receiver.serve())
    while not receiver.started:
        await asyncio.sleep(0.01)
    standin = standin_module.StripeStandin(
        secret_key=app.settings.STRIPE_SECRET_KEY,
        webhook_secret=app.settings.STRIPE_WEBHOOK_SECRET,
        webhook_urls=[f"http://127.0.0.1:{port}/api/webhooks/stripe"],
        retry_delays=(0.2, 0.5, 1.0),
    )
    base = await asyncio.to_thread(standin.start)
    settings = checkout_settings(tmp_path, STRIPE_API_BASE=base)
    stripe_http = stripe.HTTPXClient()
    client = stripe_client_from_settings(settings, stripe_http)
    set_payment_gateway(StripeGateway(client))
    try:
        yield app, client
    finally:
        await asyncio.to_thread(standin.stop)
        receiver.should_exit = True
        await task
        await stripe_http.close_async()


async def _eventually(probe, what: str, timeout: float = 20.0):
    for _ in range(int(timeout / 0.1)):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.1)
    pytest.fail(f"{what} did not happen in {timeout:.0f} s")


async def _pay(checkout_url: str) -> None:
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(checkout_url)
        assert page.status_code == 200
        (pay_path,) = set(re.findall(r'(?:form)?action="([^"]*/pay)"', page.text))
        paid = await browser.post(urljoin(checkout_url, pay_path), data={})
        assert paid.status_code in (302, 303), paid.text


def _json(response):
    return json.loads(response.get_body())


async def test_paying_on_the_hosted_page_licenses_the_image_and_a_refund_revokes_it(standin_app, blob_store):
    app, stripe_client = standin_app
    image_id = uuid.uuid4()
    await blob_store.put(ORIGINALS, f"carol/{image_id}.jpg", b"original bytes", content_type="image/jpeg")
    await apply_catalogue_event(app.runtime.db, message(approved(image_id, original_blob=f"carol/{image_id}.jpg")))
    bob = app.token("bob")
    await app.call("add_cart_item", "POST", "cart/items", token=bob, json_body={"image_id": str(image_id)})
    started = await app.call("checkout", "POST", "checkout", token=bob)
    assert started.status_code == 201, started.get_body()
    order_id = _json(started)["order_id"]

    await _pay(_json(started)["checkout_url"])

    async def order_status():
        return await app.runtime.db.pool.fetchval("select status from checkout.orders where id = $1", order_id)

    await _eventually(lambda: _is(order_status, "paid"), "the order being paid")
    (license_,) = _json(await app.call("get_licenses", "GET", "licenses", token=bob))["licenses"]
    assert license_["usable"] is True
    payment_intent = await app.runtime.db.pool.fetchval(
        "select stripe_payment_intent from checkout.orders where id = $1", order_id
    )

    await stripe_client.v1.refunds.create_async({"payment_intent": payment_intent})

    await _eventually(lambda: _is(order_status, "refunded"), "the refund arriving")
    (license_,) = _json(await app.call("get_licenses", "GET", "licenses", token=bob))["licenses"]
    assert license_["usable"] is False
    subjects = [r["subject"] for r in await app.runtime.db.pool.fetch("select subject from bus.outbox order by seq")]
    assert subjects == ["license.issued", "order.completed", "order.refunded"]
    refunded = await app.runtime.db.pool.fetchval("select body from bus.outbox where subject = 'order.refunded'")
    assert refunded["image_ids"] == [str(image_id)]  # search stops counting the sale


async def test_a_subscription_bought_on_the_hosted_page_comes_with_its_allotment(standin_app):
    app, _ = standin_app
    bob = app.token("bob")
    started = await app.call(
        "subscription_checkout", "POST", "subscriptions/checkout", token=bob, json_body={"plan": "basic-10"}
    )
    assert started.status_code == 201, started.get_body()

    await _pay(_json(started)["checkout_url"])

    async def remaining():
        response = await app.call("get_subscription", "GET", "subscription", token=bob)
        return response.status_code == 200 and _json(response)["remaining"] == 10

    await _eventually(remaining, "the allotment arriving")
    image_id = uuid.uuid4()
    await apply_catalogue_event(app.runtime.db, message(approved(image_id)))
    licensed = await app.call(
        "license_image",
        "POST",
        f"images/{image_id}/license",
        token=bob,
        json_body={},
        route_params={"id": str(image_id)},
    )
    assert licensed.status_code == 201
    assert _json(await app.call("get_subscription", "GET", "subscription", token=bob))["remaining"] == 9


async def _is(probe, expected) -> bool:
    return await probe() == expected
