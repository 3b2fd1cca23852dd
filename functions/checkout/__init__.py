"""The `checkout` service (ARCHITECTURE §2): cart, Stripe checkout and webhooks, licenses, subscriptions."""

from functions.checkout import bus_triggers, routes  # noqa: F401  (importing registers the functions)
from functions.checkout.blueprint import bp

__all__ = ["bp"]
