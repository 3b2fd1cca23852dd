"""Payments port and its Stripe adapter (the real `stripe` SDK; the local stand-in speaks the same HTTP API).

`StripeGateway` creates hosted Checkout Sessions; `verify_webhook` checks a
`Stripe-Signature` header and returns the event. Services hold a `PaymentGateway`
so unit tests can pass a fake.
"""

from shared.payments.gateway import (
    CheckoutLine,
    HostedCheckout,
    PaymentGateway,
    PaymentProviderError,
    PaymentProviderUnavailable,
    StripeGateway,
    get_payment_gateway,
    set_payment_gateway,
    stripe_client_from_settings,
)
from shared.payments.webhooks import WEBHOOK_TOLERANCE_SECONDS, InvalidWebhook, StripeEvent, verify_webhook

__all__ = [
    "WEBHOOK_TOLERANCE_SECONDS",
    "CheckoutLine",
    "HostedCheckout",
    "InvalidWebhook",
    "PaymentGateway",
    "PaymentProviderError",
    "PaymentProviderUnavailable",
    "StripeEvent",
    "StripeGateway",
    "get_payment_gateway",
    "set_payment_gateway",
    "stripe_client_from_settings",
    "verify_webhook",
]
