"""Payouts port: Stripe Connect Express accounts, onboarding links and transfers.

The payouts service holds a `PayoutGateway`; the Stripe adapter speaks the real
`stripe` SDK (locally to the stand-in, which models accounts, account links,
a hosted onboarding page and transfers). Every create carries an idempotency
key derived from our own ids, so a retry after a crash can never pay twice.

Errors: `PaymentProviderUnavailable` (from gateway.py) means "try again later,
same key"; `TransferRefused` means Stripe said no for good (closed account,
payouts disabled, insufficient platform balance) and the money goes back to
the contributor's balance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.payments.gateway import PaymentProviderError


class TransferRefused(PaymentProviderError):
    """Stripe refused the transfer permanently; the same request will never succeed."""


@dataclass(frozen=True)
class ConnectedAccount:
    account_id: str
    payouts_enabled: bool
    details_submitted: bool


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    amount_minor: int
    currency: str  # upper-case ISO 4217


class PayoutGateway(Protocol):
    async def create_connected_account(self, *, contributor_id: str, country: str, email: str | None) -> str:
        """An Express account for the contributor (idempotency key `connect-account-<contributor_id>`); its id."""

    async def create_onboarding_link(self, *, account_id: str, refresh_url: str, return_url: str) -> str:
        """A one-time hosted onboarding URL (`type=account_onboarding`)."""

    async def retrieve_account(self, account_id: str) -> ConnectedAccount:
        """The account's current onboarding and payout state."""

    async def transfer(
        self,
        *,
        amount_minor: int,
        currency: str,
        destination: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> Transfer:
        """Move `amount_minor` from the platform balance to `destination`, exactly once per `idempotency_key`."""
