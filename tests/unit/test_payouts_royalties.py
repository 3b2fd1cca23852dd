"""Royalty arithmetic: levels by download of the year, and every minor unit of a sale accounted for."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from functions.payouts.royalties import (
    DEFAULT_LEVELS,
    LevelTable,
    split_sale,
    subscription_earning,
    subscription_floor_minor,
)


@pytest.mark.parametrize(
    ("download", "rate"),
    [
        (1, 1500),
        (100, 1500),
        (101, 2000),
        (250, 2000),
        (251, 2500),
        (2500, 2500),
        (2501, 3000),
        (10000, 3000),
        (10001, 3500),
        (25000, 3500),
        (25001, 4000),
        (10**9, 4000),
    ],
)
def test_the_default_table_is_shutterstocks_levels(download, rate):
    assert DEFAULT_LEVELS.rate_for(download) == rate


def test_the_contributor_share_is_floored_and_the_platform_keeps_the_remainder():
    assert split_sale(999, 1500).earned_minor == 149  # 149.85 -> 149
    assert split_sale(999, 1500).platform_minor == 850
    assert split_sale(0, 4000).earned_minor == 0


@given(price=st.integers(0, 10**9), rate=st.integers(0, 10_000))
def test_every_minor_unit_of_a_sale_is_the_contributors_or_the_platforms(price, rate):
    split = split_sale(price, rate)
    assert split.earned_minor + split.platform_minor == price
    assert 0 <= split.earned_minor <= price
    assert split.earned_minor * 10_000 <= price * rate < (split.earned_minor + 1) * 10_000


def test_a_subscription_download_earns_the_rate_of_the_plans_per_download_value():
    # 199.00 / 750 downloads = 0.2653...; 15% of it is 0.0398 -> below the floor of 0.10
    assert subscription_earning(19900, 750, 1500, "USD") == 10
    # 49.00 / 10 = 4.90; 20% = 0.98
    assert subscription_earning(4900, 10, 2000, "USD") == 98
    # exact rational arithmetic, then floored: 100.00 / 7 = 14.2857..; 15% = 2.1428..
    assert subscription_earning(10000, 7, 1500, "USD") == 214
    assert subscription_earning(10000, 3, 1500, "USD") == 500  # 15% of 33.33.. is exactly 5.00


def test_the_subscription_floor_is_ten_cents_in_the_plans_currency():
    assert subscription_floor_minor("USD") == 10
    assert subscription_floor_minor("EUR") == 10
    assert subscription_floor_minor("JPY") == 1  # 0.10 yen rounds up to the smallest unit
    assert subscription_floor_minor("KWD") == 100


@pytest.mark.parametrize(
    "levels",
    [
        [],
        [{"from_download": 2, "rate_bp": 1500}],
        [{"from_download": 1, "rate_bp": 1500}, {"from_download": 1, "rate_bp": 2000}],
        [{"from_download": 1, "rate_bp": 10001}],
        [{"from_download": 1, "rate_bp": -1}],
    ],
)
def test_a_malformed_level_table_is_refused(levels):
    with pytest.raises(ValidationError):
        LevelTable(levels=levels)
