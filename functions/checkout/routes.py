"""Checkout HTTP routes: cart, checkout, orders, licenses and downloads, subscriptions, the Stripe webhook."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from functions.checkout.blueprint import bp
from functions.checkout.cart import add_to_cart, remove_from_cart, view_cart
from functions.checkout.licenses import download_link, list_licenses
from functions.checkout.models import (
    CartItemIn,
    CartOut,
    CheckoutOut,
    LicenseIn,
    LicenseOut,
    LicensesOut,
    OrdersOut,
    PlansOut,
    SubscriptionCheckoutIn,
    SubscriptionCheckoutOut,
    SubscriptionOut,
    WebhookOut,
)
from functions.checkout.orders import list_orders, start_checkout
from functions.checkout.stripe_events import apply_stripe_event
from functions.checkout.subscriptions import (
    current_subscription,
    license_from_allotment,
    list_plans,
    start_subscription_checkout,
)
from shared.http import ANYONE, ApiRequest, ApiResponse, Problem, api
from shared.payments import InvalidWebhook, get_payment_gateway, verify_webhook
from shared.runtime import get_runtime

BUYER = {"buyer"}
TAGS = ["checkout"]


def _uuid(request: ApiRequest, name: str, what: str) -> UUID:
    try:
        return UUID(request.path_params.get(name, ""))
    except ValueError:
        raise Problem(404, f"{what}-not-found", f"{what.capitalize()} not found") from None


# --- cart and checkout -------------------------------------------------------------------------


@api(bp, "GET", "cart", roles=BUYER, summary="The caller's cart", response_model=CartOut, tags=TAGS)
async def get_cart(request: ApiRequest) -> CartOut:
    runtime = await get_runtime()
    return await view_cart(runtime.db, runtime.settings, request.require_principal().sub)


@api(
    bp,
    "POST",
    "cart/items",
    roles=BUYER,
    summary="Add an image to the cart (or change its license type)",
    body_model=CartItemIn,
    response_model=CartOut,
    status=201,
    errors=(404,),
    tags=TAGS,
)
async def add_cart_item(request: ApiRequest) -> CartOut:
    runtime = await get_runtime()
    body: CartItemIn = request.body
    return await add_to_cart(
        runtime.db, runtime.settings, request.require_principal().sub, body.image_id, body.license_type
    )


@api(
    bp,
    "DELETE",
    "cart/items/{image_id:guid}",
    roles=BUYER,
    summary="Remove an image from the cart",
    response_model=CartOut,
    tags=TAGS,
)
async def remove_cart_item(request: ApiRequest) -> CartOut:
    runtime = await get_runtime()
    image_id = _uuid(request, "image_id", "image")
    return await remove_from_cart(runtime.db, runtime.settings, request.require_principal().sub, image_id)


@api(
    bp,
    "POST",
    "checkout",
    roles=BUYER,
    summary="Order the cart and get the Stripe Checkout page to pay it",
    response_model=CheckoutOut,
    status=201,
    errors=(409, 502, 503),
    tags=TAGS,
)
async def checkout(request: ApiRequest) -> CheckoutOut:
    runtime = await get_runtime()
    gateway = get_payment_gateway(runtime.settings)
    return await start_checkout(runtime.db, gateway, runtime.settings, request.require_principal().sub)


@api(bp, "GET", "orders", roles=BUYER, summary="The caller's orders", response_model=OrdersOut, tags=TAGS)
async def get_orders(request: ApiRequest) -> OrdersOut:
    runtime = await get_runtime()
    return await list_orders(runtime.db, request.require_principal().sub)


# --- licenses -----------------------------------------------------------------------------------


@api(bp, "GET", "licenses", roles=BUYER, summary="The caller's licenses", response_model=LicensesOut, tags=TAGS)
async def get_licenses(request: ApiRequest) -> LicensesOut:
    runtime = await get_runtime()
    return await list_licenses(runtime.db, request.require_principal().sub)


@api(
    bp,
    "GET",
    "licenses/{id:guid}/download",
    roles=BUYER,
    summary="Redirect (302) to a short-lived download link of the licensed original",
    status=302,
    errors=(410,),
    tags=TAGS,
)
async def download_license(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    url = await download_link(
        runtime.db,
        runtime.storage,
        request.require_principal().sub,
        _uuid(request, "id", "license"),
        timedelta(seconds=runtime.settings.LICENSE_DOWNLOAD_TTL_SECONDS),
    )
    # The link is a bearer credential: keep it out of shared caches.
    return ApiResponse(302, headers={"Location": url, "Cache-Control": "no-store"})


# --- subscriptions ------------------------------------------------------------------------------


@api(
    bp,
    "GET",
    "subscriptions/plans",
    roles=ANYONE,
    summary="Subscription plans and their monthly downloads",
    response_model=PlansOut,
    tags=TAGS,
)
async def get_plans(request: ApiRequest) -> PlansOut:
    runtime = await get_runtime()
    return list_plans(runtime.settings)


@api(
    bp,
    "POST",
    "subscriptions/checkout",
    roles=BUYER,
    summary="Subscribe to a plan through Stripe Checkout",
    body_model=SubscriptionCheckoutIn,
    response_model=SubscriptionCheckoutOut,
    status=201,
    errors=(409, 502, 503),
    tags=TAGS,
)
async def subscription_checkout(request: ApiRequest) -> SubscriptionCheckoutOut:
    runtime = await get_runtime()
    body: SubscriptionCheckoutIn = request.body
    return await start_subscription_checkout(
        runtime.db, get_payment_gateway(runtime.settings), runtime.settings, request.require_principal().sub, body.plan
    )


@api(
    bp,
    "GET",
    "subscription",
    roles=BUYER,
    summary="The caller's subscription and downloads left this period",
    response_model=SubscriptionOut,
    errors=(404,),
    tags=TAGS,
)
async def get_subscription(request: ApiRequest) -> SubscriptionOut:
    runtime = await get_runtime()
    found = await current_subscription(runtime.db, request.require_principal().sub)
    if found is None:
        raise Problem(404, "no-subscription", "No subscription", "You have not subscribed to a plan.")
    return found


@api(
    bp,
    "POST",
    "images/{id:guid}/license",
    roles=BUYER,
    summary="License an image with one download of the subscription allotment",
    body_model=LicenseIn,
    response_model=LicenseOut,
    status=201,
    errors=(402, 409),
    tags=TAGS,
)
async def license_image(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    body: LicenseIn = request.body
    license_, issued = await license_from_allotment(
        runtime.db, request.require_principal().sub, _uuid(request, "id", "image"), body.license_type, runtime.settings
    )
    return ApiResponse(201 if issued else 200, license_)


# --- Stripe -------------------------------------------------------------------------------------


@api(
    bp,
    "POST",
    "webhooks/stripe",
    roles=ANYONE,
    summary="Stripe webhook endpoint (signature-verified, idempotent)",
    required_headers=("Stripe-Signature",),
    response_model=WebhookOut,
    tags=TAGS,
    rate_limited=False,  # Stripe's retries must never be throttled away; the signature is the gate
)
async def stripe_webhook(request: ApiRequest) -> WebhookOut:
    runtime = await get_runtime()
    try:
        # The raw bytes: the signature covers exactly them, so nothing may parse or re-encode first.
        event = verify_webhook(
            request.http.get_body() or b"",
            request.headers.get("stripe-signature"),
            runtime.settings.STRIPE_WEBHOOK_SECRET,
        )
    except InvalidWebhook as exc:
        raise Problem(400, "invalid-webhook", "Invalid Stripe webhook", str(exc)) from None
    return WebhookOut(outcome=await apply_stripe_event(runtime.db, event, runtime.settings))
