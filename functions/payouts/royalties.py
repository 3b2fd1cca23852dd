"""Royalty levels and the arithmetic of one sale: what the contributor earns and what the platform keeps.

Rounding rule: the contributor's share is rounded *down* to the minor unit (floor of price x rate),
and the remainder, always less than one minor unit of the exact share plus the platform's own part,
goes to the platform. So for every sale line `earned + platform == price` exactly: every minor unit
is either the contributor's or the platform's, and none is created or lost.

A subscription download has no price of its own: it earns rate x the plan's per-download value
(plan price / allotment, exact rational arithmetic, then floored), but never less than 0.10 in the
plan's currency. The floor can exceed the per-download value of a generous plan; the platform pays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from itertools import pairwise

from pydantic import BaseModel, ConfigDict, Field, model_validator

BASIS_POINTS = 10_000

# ISO 4217 minor-unit exponents that are not 2 (everything else has cents).
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_units_per_major(currency: str) -> int:
    return 10 ** _EXPONENTS.get(currency.upper(), 2)


def subscription_floor_minor(currency: str) -> int:
    """0.10 of the currency in minor units, rounded up to a whole minor unit (1 yen for JPY)."""
    return max(1, -(-minor_units_per_major(currency) // 10))


class Level(BaseModel):
    # strict: JSON `true`/`false` is not a download number or a rate (the fuzzer sent them).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    from_download: int = Field(ge=1, description="The first download of the year (1-based) this level applies to.")
    rate_bp: int = Field(ge=0, le=BASIS_POINTS, description="Royalty rate in basis points (1500 = 15%).")


class LevelTable(BaseModel):
    """Levels ordered by from_download; the first starts at download 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: list[Level] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _ordered(self) -> LevelTable:
        starts = [level.from_download for level in self.levels]
        if starts[0] != 1:
            raise ValueError("the first level must start at download 1")
        if any(b <= a for a, b in pairwise(starts)):
            raise ValueError("levels must start at strictly increasing downloads")
        return self

    def level_index(self, download_number: int) -> int:
        """Index of the level the n-th download of the year (1-based) falls in."""
        index = 0
        for i, level in enumerate(self.levels):
            if level.from_download <= download_number:
                index = i
        return index

    def rate_for(self, download_number: int) -> int:
        return self.levels[self.level_index(download_number)].rate_bp


DEFAULT_LEVELS = LevelTable(
    levels=[
        Level(from_download=1, rate_bp=1500),  # 0-100 downloads this year: 15%
        Level(from_download=101, rate_bp=2000),  # 101-250: 20%
        Level(from_download=251, rate_bp=2500),  # 251-2,500: 25%
        Level(from_download=2501, rate_bp=3000),  # 2,501-10,000: 30%
        Level(from_download=10001, rate_bp=3500),  # 10,001-25,000: 35%
        Level(from_download=25001, rate_bp=4000),  # 25,001+: 40%
    ]
)


@dataclass(frozen=True)
class RoyaltyTable:
    version: int
    effective_at: datetime
    table: LevelTable


@dataclass(frozen=True)
class Split:
    earned_minor: int
    platform_minor: int


def split_sale(price_minor: int, rate_bp: int) -> Split:
    """The contributor's floored share of one sale line; the platform keeps the rest."""
    if price_minor < 0 or not 0 <= rate_bp <= BASIS_POINTS:
        raise ValueError("a sale has a non-negative price and a rate between 0 and 100%")
    earned = price_minor * rate_bp // BASIS_POINTS
    return Split(earned, price_minor - earned)


def subscription_earning(plan_amount_minor: int, plan_downloads: int, rate_bp: int, currency: str) -> int:
    """rate x (plan price / allotment), floored to the minor unit, at least 0.10 of the currency."""
    if plan_downloads <= 0 or plan_amount_minor < 0:
        raise ValueError("a plan has a positive allotment and a non-negative price")
    exact = Fraction(plan_amount_minor * rate_bp, plan_downloads * BASIS_POINTS)
    return max(exact.numerator // exact.denominator, subscription_floor_minor(currency))
