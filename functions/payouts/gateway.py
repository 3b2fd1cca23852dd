"""Where payouts gets its PayoutGateway: the Stripe Connect adapter from shared.payments once it is
there (branch `connect`), a test's fake when one is set."""

from __future__ import annotations

from shared.config import Settings
from shared.http import Problem
from shared.payments.connect import PayoutGateway

_override: PayoutGateway | None = None


def set_payout_gateway(gateway: PayoutGateway | None) -> None:
    """For tests and hosts that build their own gateway."""
    global _override
    _override = gateway


def payout_gateway(settings: Settings) -> PayoutGateway:
    if _override is not None:
        return _override
    import shared.payments as payments

    factory = getattr(payments, "get_payout_gateway", None)
    if factory is None:
        raise Problem(503, "payouts-unavailable", "Payouts unavailable", "Stripe Connect is not configured.")
    return factory(settings)


def connect_webhook_secret(settings: Settings) -> str | None:
    # STRIPE_CONNECT_WEBHOOK_SECRET is declared by the Connect adapter's settings (branch `connect`).
    return getattr(settings, "STRIPE_CONNECT_WEBHOOK_SECRET", None)
