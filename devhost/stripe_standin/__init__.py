"""A local stand-in for the subset of Stripe's HTTP API the marketplace uses.

The app keeps the real `stripe` SDK and only points its API base here (devhost sets STRIPE_API_BASE):
Checkout Sessions in payment and subscription mode, a hosted page to pay or cancel, refunds,
customers, subscriptions (with a test helper that starts the next period), Connect accounts with a
hosted onboarding page and transfers, events, and webhooks signed exactly as Stripe signs them.
State lives in memory for the life of the process.
"""

from devhost.stripe_standin.server import StripeStandin
from devhost.stripe_standin.webhooks import signature_header

__all__ = ["StripeStandin", "signature_header"]
