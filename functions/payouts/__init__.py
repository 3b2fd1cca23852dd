"""The `payouts` service (ARCHITECTURE §2): contributor earnings ledger, royalty levels, tax profiles,
Stripe Connect accounts and payout batches."""

from functions.payouts import bus_triggers, routes  # noqa: F401  (importing registers the functions)
from functions.payouts.blueprint import bp

__all__ = ["bp"]
