"""The launch price list: what every service charges and shows until an admin publishes prices.

Moderation owns the price table and announces each change as `pricing.updated`; until the first
announcement there is nothing on the bus, so checkout (what is charged), search (what is shown) and
the admin pricing page (what is listed) all fall back to this one list from the settings.
"""

from __future__ import annotations

from shared.bus.events import LicenseType, Price
from shared.config import Settings


def launch_prices(settings: Settings) -> dict[LicenseType, Price]:
    currency = settings.CHECKOUT_DEFAULT_CURRENCY
    return {
        "standard": Price(amount_minor=settings.CHECKOUT_DEFAULT_STANDARD_PRICE_MINOR, currency=currency),
        "enhanced": Price(amount_minor=settings.CHECKOUT_DEFAULT_ENHANCED_PRICE_MINOR, currency=currency),
    }
