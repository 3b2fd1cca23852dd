"""Buying: the cart, an order with frozen prices, and the Stripe Checkout Session opened for it.

Stripe is met at the SDK's HTTP boundary (`fake_stripe` answers like api.stripe.com);
the checkout functions run as the Functions worker calls them, on embedded Postgres.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from functions.checkout.cart import add_to_cart
from functions.checkout.catalogue import apply_catalogue_event
from shared.http import Problem
from tests.fixtures.checkout import approved, checkout_settings, message, pricing, removed


async def _put_on_sale(app, *image_ids, **kwargs):
    for image_id in image_ids:
        await apply_catalogue_event(app.runtime.db, message(approved(image_id, **kwargs)))


pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _json(response):
    return json.loads(response.get_body())


async def _add(app, token, image_id, license_type="standard"):
    return await app.call(
        "add_cart_item",
        "POST",
        "cart/items",
        token=token,
        json_body={"image_id": str(image_id), "license_type": license_type},
    )


async def test_the_cart_lists_images_at_the_current_prices_with_a_total(checkout_app):
    app = checkout_app
    a, b = uuid.uuid4(), uuid.uuid4()
    await _put_on_sale(app, a, b)
    await apply_catalogue_event(app.runtime.db, message(pricing(1, standard=1200, enhanced=8000)))
    bob = app.token("bob")
    assert (await _add(app, bob, a)).status_code == 201
    response = await _add(app, bob, b, "enhanced")
    assert response.status_code == 201
    cart = _json(response)
    assert [(i["image_id"], i["license_type"], i["price"]["amount_minor"]) for i in cart["items"]] == [
        (str(a), "standard", 1200),
        (str(b), "enhanced", 8000),
    ]
    assert cart["total"] == {"amount_minor": 9200, "currency": "USD"}
    # Another buyer's cart is their own.
    assert _json(await app.call("get_cart", "GET", "cart", token=app.token("eve")))["items"] == []


async def test_default_prices_apply_until_the_admin_publishes_a_price_list(checkout_app):
    app = checkout_app
    image = uuid.uuid4()
    await _put_on_sale(app, image)
    cart = _json(await _add(app, app.token("bob"), image))
    assert cart["total"] == {
        "amount_minor": app.settings.CHECKOUT_DEFAULT_STANDARD_PRICE_MINOR,
        "currency": app.settings.CHECKOUT_DEFAULT_CURRENCY,
    }


async def test_an_image_not_on_sale_cannot_be_added_and_bad_input_names_the_field(checkout_app):
    app = checkout_app
    bob = app.token("bob")
    unknown = await _add(app, bob, uuid.uuid4())
    assert unknown.status_code == 404
    assert _json(unknown)["type"].endswith("/image-not-available")
    bad = await app.call(
        "add_cart_item", "POST", "cart/items", token=bob, json_body={"image_id": "nope", "license_type": "gold"}
    )
    assert bad.status_code == 422
    assert {e["name"] for e in _json(bad)["errors"]} == {"image_id", "license_type"}
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.cart_items") == 0


async def test_only_buyers_have_a_cart(checkout_app):
    app = checkout_app
    assert (await app.call("get_cart", "GET", "cart")).status_code == 401
    contributor = app.token("carol", ("contributor",))
    assert (await app.call("get_cart", "GET", "cart", token=contributor)).status_code == 403


async def test_a_taken_down_image_is_dropped_from_the_cart_with_a_notice(checkout_app):
    app = checkout_app
    kept, taken_down = uuid.uuid4(), uuid.uuid4()
    await _put_on_sale(app, kept, taken_down)
    bob = app.token("bob")
    await _add(app, bob, kept)
    await _add(app, bob, taken_down)
    await apply_catalogue_event(app.runtime.db, message(removed(taken_down)))

    cart = _json(await app.call("get_cart", "GET", "cart", token=bob))
    assert [i["image_id"] for i in cart["items"]] == [str(kept)]
    assert [(n["code"], n["image_id"]) for n in cart["notices"]] == [("image-unavailable", str(taken_down))]
    again = _json(await app.call("get_cart", "GET", "cart", token=bob))
    assert again["notices"] == []  # told once


async def test_removing_an_item_is_idempotent(checkout_app):
    app = checkout_app
    image = uuid.uuid4()
    await _put_on_sale(app, image)
    bob = app.token("bob")
    await _add(app, bob, image)
    for _ in range(2):
        response = await app.call(
            "remove_cart_item", "DELETE", f"cart/items/{image}", token=bob, route_params={"image_id": str(image)}
        )
        assert response.status_code == 200
        assert _json(response)["items"] == []


async def test_checkout_freezes_prices_into_a_pending_order_and_opens_a_stripe_session(checkout_app, fake_stripe):
    app = checkout_app
    a, b = uuid.uuid4(), uuid.uuid4()
    await _put_on_sale(app, a, b)
    await apply_catalogue_event(app.runtime.db, message(pricing(1, standard=1500, enhanced=9900)))
    bob = app.token("bob")
    await _add(app, bob, a)
    await _add(app, bob, b, "enhanced")

    response = await app.call("checkout", "POST", "checkout", token=bob)
    assert response.status_code == 201, response.get_body()
    out = _json(response)
    order_id = out["order_id"]
    assert out["total"] == {"amount_minor": 11400, "currency": "USD"}
    assert out["checkout_url"].startswith(fake_stripe.base_url + "/pay/cs_test_")

    (sent,) = fake_stripe.requests
    params = sent["params"]
    assert sent["headers"]["idempotency-key"] == f"checkout-{order_id}"
    assert params["mode"] == "payment"
    assert params["metadata"] == {"order_id": order_id, "buyer_id": "bob"}
    assert params["payment_intent_data"]["metadata"]["order_id"] == order_id
    assert params["client_reference_id"] == order_id
    assert params["success_url"].startswith(app.settings.PUBLIC_BASE_URL)
    assert params["cancel_url"].startswith(app.settings.PUBLIC_BASE_URL)
    amounts = sorted(
        (item["price_data"]["unit_amount"], item["price_data"]["currency"]) for item in params["line_items"].values()
    )
    assert amounts == [("1500", "usd"), ("9900", "usd")]

    # A later price change does not touch the order.
    await apply_catalogue_event(app.runtime.db, message(pricing(2, standard=1, enhanced=2)))
    orders = _json(await app.call("get_orders", "GET", "orders", token=bob))["orders"]
    assert [(o["id"], o["status"], o["total"]["amount_minor"]) for o in orders] == [(order_id, "pending", 11400)]
    assert sorted(line["price"]["amount_minor"] for line in orders[0]["lines"]) == [1500, 9900]
    assert await app.runtime.db.pool.fetchval("select stripe_session_id from checkout.orders") is not None


async def test_checking_out_the_same_cart_again_reuses_its_payment_page_so_it_cannot_be_paid_twice(
    checkout_app, fake_stripe
):
    app = checkout_app
    a, b = uuid.uuid4(), uuid.uuid4()
    await _put_on_sale(app, a, b)
    bob = app.token("bob")
    await _add(app, bob, a)

    # A double click: two submits at once, then a third from another tab.
    first, second = await asyncio.gather(*(app.call("checkout", "POST", "checkout", token=bob) for _ in range(2)))
    third = await app.call("checkout", "POST", "checkout", token=bob)
    outs = [_json(r) for r in (first, second, third)]
    assert {r.status_code for r in (first, second, third)} == {201}
    assert len({o["order_id"] for o in outs}) == 1
    assert len({o["checkout_url"] for o in outs}) == 1
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.orders") == 1
    assert len({r["params"]["client_reference_id"] for r in fake_stripe.requests}) == 1

    # A changed cart is a new order with its own page.
    await _add(app, bob, b)
    changed = _json(await app.call("checkout", "POST", "checkout", token=bob))
    assert changed["order_id"] != outs[0]["order_id"]
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.orders") == 2


async def test_an_empty_cart_cannot_be_checked_out(checkout_app, fake_stripe):
    response = await checkout_app.call("checkout", "POST", "checkout", token=checkout_app.token("bob"))
    assert response.status_code == 409
    assert _json(response)["type"].endswith("/cart-empty")
    assert fake_stripe.requests == []
    assert await checkout_app.runtime.db.pool.fetchval("select count(*) from checkout.orders") == 0


async def test_a_refused_stripe_request_fails_the_order_and_answers_502(checkout_app, fake_stripe):
    app = checkout_app
    image = uuid.uuid4()
    await _put_on_sale(app, image)
    bob = app.token("bob")
    await _add(app, bob, image)
    fake_stripe.fail_next = (400, "Invalid currency")
    response = await app.call("checkout", "POST", "checkout", token=bob)
    assert response.status_code == 502
    assert await app.runtime.db.pool.fetchval("select status from checkout.orders") == "failed"
    assert len(_json(await app.call("get_cart", "GET", "cart", token=bob))["items"]) == 1  # cart kept


async def test_an_unreachable_stripe_answers_503_and_the_order_waits_pending_for_the_buyers_retry(
    checkout_app, fake_stripe
):
    app = checkout_app
    image = uuid.uuid4()
    await _put_on_sale(app, image)
    bob = app.token("bob")
    await _add(app, bob, image)
    fake_stripe.fail_next, fake_stripe.fail_times = (503, "Service unavailable"), 3
    response = await app.call("checkout", "POST", "checkout", token=bob)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    keys = {r["headers"]["idempotency-key"] for r in fake_stripe.requests}
    assert len(fake_stripe.requests) == 3 and len(keys) == 1  # retried, always as the same request
    (order,) = await app.runtime.db.pool.fetch("select id, status, stripe_session_id from checkout.orders")
    assert (order["status"], order["stripe_session_id"]) == ("pending", None)

    # Stripe is back: the buyer's retry pays the same order, asking Stripe under the same idempotency key.
    retried = await app.call("checkout", "POST", "checkout", token=bob)
    assert retried.status_code == 201
    assert _json(retried)["order_id"] == str(order["id"])
    assert {r["headers"]["idempotency-key"] for r in fake_stripe.requests} == keys
    assert await app.runtime.db.pool.fetchval("select count(*) from checkout.orders") == 1


async def test_a_full_cart_takes_no_new_image_but_may_change_one_it_holds(checkout_app, tmp_path):
    app = checkout_app
    small = checkout_settings(tmp_path, CHECKOUT_MAX_CART_ITEMS=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await _put_on_sale(app, a, b, c)
    await add_to_cart(app.runtime.db, small, "bob", a, "standard")
    await add_to_cart(app.runtime.db, small, "bob", b, "standard")
    with pytest.raises(Problem) as refused:
        await add_to_cart(app.runtime.db, small, "bob", c, "standard")
    assert (refused.value.status, refused.value.type_slug) == (409, "cart-full")
    cart = await add_to_cart(app.runtime.db, small, "bob", b, "enhanced")
    assert [(str(i.image_id), i.license_type) for i in cart.items] == [(str(a), "standard"), (str(b), "enhanced")]
