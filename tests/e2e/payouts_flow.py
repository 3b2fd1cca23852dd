"""Shared set-up of the payout flow on devhost, used by the payouts e2e test and browser journey 4: a hold
of seconds (PAYOUT_HOLD_DAYS accepts fractions) and a 1.00 threshold so one sale is enough, a purchase
paid on the Stripe stand-in's hosted page, and a valid W-9."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpx

HOLD_SECONDS = 20

W9 = {
    "form_type": "W-9",
    "legal_name": "Carol Example",
    "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
    "country": "US",
    "tin": "287-65-4321",
}


def short_hold(env: dict[str, str]) -> None:
    """Earnings become payable after HOLD_SECONDS, and a balance of 1.00 is paid."""
    env["PAYOUT_HOLD_DAYS"] = str(HOLD_SECONDS / 86400)
    env["PAYOUT_DEFAULT_THRESHOLD_MINOR"] = "100"


def buy(api: str, buyer: dict[str, str], image_id: str, until: Callable[..., Any]) -> None:
    """`buyer` adds the image to their cart, checks out and pays on the stand-in's hosted page."""

    def added():
        response = httpx.post(f"{api}/cart/items", headers=buyer, json={"image_id": image_id}, timeout=10)
        return response if response.status_code == 201 else None

    until("adding to the cart", added, timeout=60)
    checkout = httpx.post(f"{api}/checkout", headers=buyer, timeout=30)
    assert checkout.status_code == 201, checkout.text
    checkout_url = checkout.json()["checkout_url"]
    with httpx.Client(timeout=30) as browser:
        page = browser.get(checkout_url)
        (pay_path,) = set(re.findall(r'(?:form)?action="([^"]*/pay)"', page.text))
        assert browser.post(urljoin(checkout_url, pay_path), data={}).status_code in (302, 303)


def payable_balance(api: str, contributor: dict[str, str]) -> int | None:
    """The contributor's payable balance in minor units once the hold has passed, else None."""
    balances = httpx.get(f"{api}/contributor/earnings", headers=contributor, timeout=10).json()["balances"]
    return balances[0]["payable_minor"] if balances and balances[0]["payable_minor"] > 0 else None
