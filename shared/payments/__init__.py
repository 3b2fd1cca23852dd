"""Payments port and its Stripe adapter (the real `stripe` SDK; the local stand-in speaks the same HTTP API).

`StripeGateway` creates hosted Checkout Sessions; `StripeConnectGateway` (the `PayoutGateway` port) creates
Connect Express accounts, onboarding links and transfers; `verify_webhook` checks a
`Stripe-Signature` header and returns the event. Services hold a `PaymentGateway`
so unit tests can pass a fake.
"""

from shared.payments.connect import ConnectedAccount, PayoutGateway, Transfer, TransferRefused
from shared.payments.connect_stripe import StripeConnectGateway, get_payout_gateway, set_payout_gateway
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
    "ConnectedAccount",
    "HostedCheckout",
    "InvalidWebhook",
    "PaymentGateway",
    "PaymentProviderError",
    "PaymentProviderUnavailable",
    "PayoutGateway",
    "StripeConnectGateway",
    "StripeEvent",
    "StripeGateway",
    "Transfer",
    "TransferRefused",
    "get_payment_gateway",
    "get_payout_gateway",
    "set_payment_gateway",
    "set_payout_gateway",
    "stripe_client_from_settings",
    "verify_webhook",
]
