"""Hosted checkout through Stripe Checkout Sessions, with the real `stripe` SDK.

Locally `STRIPE_API_BASE` points the SDK at the Stripe stand-in; in Azure it is
unset and the SDK talks to api.stripe.com. Every create carries an idempotency
key derived from our own id, so a retried request (ours or the SDK's) can never
open a second session for the same order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import stripe
import structlog

from shared.config import Settings

log = structlog.get_logger(__name__)

# The SDK retries network errors and 409/5xx itself, with the same idempotency key.
STRIPE_NETWORK_RETRIES = 2
STRIPE_TIMEOUT_SECONDS = 20.0


class PaymentProviderError(RuntimeError):
    """Stripe refused the request (bad parameters, auth); retrying will not help."""


class PaymentProviderUnavailable(PaymentProviderError):
    """Stripe could not be reached or failed; the same request may succeed later."""


@dataclass(frozen=True)
class CheckoutLine:
    name: str
    amount_minor: int
    currency: str  # ISO 4217, any case; Stripe wants lower case
    quantity: int = 1


@dataclass(frozen=True)
class HostedCheckout:
    session_id: str
    url: str


class PaymentGateway(Protocol):
    async def start_payment(
        self,
        *,
        reference: str,
        lines: list[CheckoutLine],
        metadata: Mapping[str, str],
        success_url: str,
        cancel_url: str,
    ) -> HostedCheckout:
        """A hosted page where the buyer pays `lines` once; `reference` is our order id."""

    async def start_subscription(
        self,
        *,
        reference: str,
        plan_name: str,
        amount_minor: int,
        currency: str,
        metadata: Mapping[str, str],
        success_url: str,
        cancel_url: str,
    ) -> HostedCheckout:
        """A hosted page where the buyer subscribes to a monthly plan; `metadata` lands on the subscription."""

    def events_since(self, created_gte: int) -> AsyncIterator[dict[str, Any]]:
        """Every event the provider recorded at or after `created_gte` (Unix seconds), newest first."""


class StripeGateway:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def start_payment(
        self,
        *,
        reference: str,
        lines: list[CheckoutLine],
        metadata: Mapping[str, str],
        success_url: str,
        cancel_url: str,
    ) -> HostedCheckout:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": line.currency.lower(),
                        "unit_amount": line.amount_minor,
                        "product_data": {"name": line.name[:250] or "Image license"},
                    },
                    "quantity": line.quantity,
                }
                for line in lines
            ],
            "metadata": dict(metadata),
            "client_reference_id": reference,
            # On the PaymentIntent too, so charge and refund events name the order even when
            # they arrive before checkout.session.completed.
            "payment_intent_data": {"metadata": dict(metadata)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return await self._create(params, idempotency_key=f"checkout-{reference}")

    async def start_subscription(
        self,
        *,
        reference: str,
        plan_name: str,
        amount_minor: int,
        currency: str,
        metadata: Mapping[str, str],
        success_url: str,
        cancel_url: str,
    ) -> HostedCheckout:
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount_minor,
                        "recurring": {"interval": "month"},
                        "product_data": {"name": f"Subscription {plan_name}"},
                    },
                    "quantity": 1,
                }
            ],
            "metadata": dict(metadata),
            "client_reference_id": reference,
            # Copied onto the subscription, so its own events and its invoices say whose plan it is.
            "subscription_data": {"metadata": dict(metadata)},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return await self._create(params, idempotency_key=f"subscribe-{reference}")

    async def events_since(self, created_gte: int) -> AsyncIterator[dict[str, Any]]:
        try:
            page = await self._client.v1.events.list_async({"created": {"gte": created_gte}, "limit": 100})
            async for event in page.auto_paging_iter():
                yield event.to_dict()
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise PaymentProviderUnavailable(f"Stripe is unreachable: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused to list events: {exc.user_message or exc}") from exc

    async def _create(self, params: dict[str, Any], *, idempotency_key: str) -> HostedCheckout:
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]  # a plain dict is what the TypedDict describes
                {"idempotency_key": idempotency_key},
            )
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise PaymentProviderUnavailable(f"Stripe is unreachable: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            if exc.http_status is not None and exc.http_status >= 500:
                raise PaymentProviderUnavailable(f"Stripe failed: {exc.user_message or exc}") from exc
            raise PaymentProviderError(f"Stripe refused the session: {exc.user_message or exc}") from exc
        if not session.url:
            raise PaymentProviderError(f"Stripe returned session {session.id} without a URL")
        log.info("stripe.session_created", session_id=session.id, mode=params["mode"])
        return HostedCheckout(session_id=session.id, url=session.url)


def stripe_client_from_settings(
    settings: Settings, http_client: stripe.HTTPClient | None = None
) -> stripe.StripeClient:
    """An SDK client for STRIPE_SECRET_KEY; STRIPE_API_BASE (the local stand-in) replaces api.stripe.com."""
    base = {"api": settings.STRIPE_API_BASE.rstrip("/")} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=STRIPE_NETWORK_RETRIES,
        # httpx: the async methods run on the worker's event loop instead of a thread.
        http_client=http_client or stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_SECONDS),
    )


_gateway: PaymentGateway | None = None


def get_payment_gateway(settings: Settings) -> PaymentGateway:
    """The process's gateway, built on first use (one pooled HTTP client per worker)."""
    global _gateway
    if _gateway is None:
        _gateway = StripeGateway(stripe_client_from_settings(settings))
    return _gateway


def set_payment_gateway(gateway: PaymentGateway | None) -> None:
    """For hosts and tests that build the gateway themselves (None: build from settings again)."""
    global _gateway
    _gateway = gateway
