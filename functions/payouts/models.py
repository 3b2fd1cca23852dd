"""The payouts service's API bodies. Money is integer minor units with its ISO 4217 currency."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.payouts.reports import GroupBy
from functions.payouts.royalties import Level
from shared.bus.events import LicenseType
from shared.http import IsoDateTime
from shared.paging import decode_cursor

Currency = str
_CURRENCY = Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$", examples=["USD"])
PayoutStatus = Literal["draft", "approved", "sending", "paid", "failed", "cancelled"]
ExclusionReason = Literal["negative_balance", "below_threshold", "no_tax_profile", "onboarding_incomplete"]


def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- earnings ----------------------------------------------------------------------------------


class EarningsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: IsoDateTime | None = Field(
        None, alias="from", description="Start (inclusive); default 1 January this year UTC."
    )
    to: IsoDateTime | None = Field(None, description="End (exclusive); default now.")
    group_by: GroupBy = "day"
    image_id: UUID | None = Field(None, description="Only this image's sales (404 if none of yours).")


class EarningsCsvQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: IsoDateTime | None = Field(None, alias="from")
    to: IsoDateTime | None = None


class EarningsLine(BaseModel):
    license_type: LicenseType
    currency: Currency
    downloads: int = Field(description="Sales and subscription downloads credited.")
    refunds: int = Field(description="Of those, refunded (reversed).")
    earned_minor: int = Field(description="Credits minus reversals.")


class EarningsGroup(BaseModel):
    key: str = Field(description="YYYY-MM-DD, YYYY-MM or the image id, per group_by.")
    lines: list[EarningsLine]


class BalanceOut(BaseModel):
    currency: Currency
    balance_minor: int = Field(description="Sum of every ledger entry.")
    payable_minor: int = Field(description="What a payout batch may pay (past the hold period); can be negative.")
    held_minor: int = Field(description="Earnings still in their hold period.")


class EarningsOut(BaseModel):
    model_config = _examples(
        {
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-12-06T21:00:00Z",
            "group_by": "month",
            "groups": [
                {
                    "key": "2026-11",
                    "lines": [
                        {
                            "license_type": "standard",
                            "currency": "USD",
                            "downloads": 12,
                            "refunds": 1,
                            "earned_minor": 3135,
                        }
                    ],
                }
            ],
            "totals": [
                {"license_type": "standard", "currency": "USD", "downloads": 12, "refunds": 1, "earned_minor": 3135}
            ],
            "balances": [{"currency": "USD", "balance_minor": 3135, "payable_minor": 1045, "held_minor": 2090}],
        }
    )

    from_: datetime = Field(alias="from")
    to: datetime
    group_by: GroupBy
    groups: list[EarningsGroup]
    totals: list[EarningsLine]
    balances: list[BalanceOut]


# --- payouts -----------------------------------------------------------------------------------


class PayoutOut(BaseModel):
    model_config = _examples(
        {
            "id": "6f1c2f4e-3a51-4f7b-9a0e-1d2c3b4a5f60",
            "batch_id": "0b8e8d4c-2f1a-4c3b-8e7d-6a5b4c3d2e1f",
            "period": "2026-11",
            "currency": "USD",
            "amount_minor": 5000,
            "gross_minor": 5000,
            "withholding_minor": 500,
            "withholding_rate_bp": 1000,
            "net_minor": 4500,
            "status": "paid",
            "transfer_id": "tr_1Q2w3E",
            "failure_reason": None,
            "created_at": "2026-12-01T02:00:04Z",
            "updated_at": "2026-12-02T09:12:30Z",
        }
    )

    id: UUID
    batch_id: UUID
    period: str
    currency: Currency
    amount_minor: int = Field(description="Payable when the batch was made.")
    gross_minor: int | None = Field(description="Debited when sent (never above the payable balance then).")
    withholding_minor: int | None
    withholding_rate_bp: int | None
    net_minor: int | None = Field(description="Transferred to the contributor's Stripe account.")
    status: PayoutStatus
    transfer_id: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class PayoutsOut(BaseModel):
    payouts: list[PayoutOut]


class LevelOut(BaseModel):
    model_config = _examples(
        {
            "year": 2026,
            "downloads_this_year": 180,
            "level": 2,
            "levels": 6,
            "rate_bp": 2000,
            "next_level_rate_bp": 2500,
            "next_level_from_download": 251,
            "downloads_to_next_level": 70,
            "royalty_table_version": 1,
            "resets_at": "2027-01-01T00:00:00Z",
        }
    )

    year: int
    downloads_this_year: int
    level: int = Field(description="1-based level the next download earns at.")
    levels: int
    rate_bp: int = Field(description="Royalty rate of the next download, in basis points.")
    next_level_rate_bp: int | None
    next_level_from_download: int | None
    downloads_to_next_level: int | None = Field(description="Downloads still needed to reach the next level.")
    royalty_table_version: int
    resets_at: datetime = Field(description="Counts reset on 1 January (UTC).")


class PayoutSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold_minor: int = Field(
        gt=0, le=10**12, description="Pay out only from this payable balance up (any currency)."
    )


class PayoutSettingsOut(BaseModel):
    model_config = _examples({"threshold_minor": 10000, "default_threshold_minor": 3500})

    threshold_minor: int
    default_threshold_minor: int


class PayoutAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: str = Field(min_length=2, max_length=2, pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")
    email: str | None = Field(None, max_length=254)


class PayoutAccountOut(BaseModel):
    model_config = _examples(
        {
            "account_id": "acct_1Q2w3E4r",
            "country": "PT",
            "payouts_enabled": False,
            "details_submitted": False,
            "onboarding_url": "https://connect.stripe.com/setup/e/acct_1Q2w3E4r/abc",
        }
    )

    account_id: str
    country: str
    payouts_enabled: bool
    details_submitted: bool
    onboarding_url: str | None = Field(None, description="One-time hosted onboarding link (POST only).")


class WebhookOut(BaseModel):
    outcome: str


# --- admin -------------------------------------------------------------------------------------


class RoyaltyTableIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "effective_at": "2027-01-01T00:00:00Z",
                    "levels": [{"from_download": 1, "rate_bp": 1500}, {"from_download": 101, "rate_bp": 2000}],
                }
            ]
        },
    )

    effective_at: IsoDateTime = Field(description="Sales at or after this time use the table; not in the past.")
    levels: list[Level] = Field(min_length=1, max_length=50)


class RoyaltyTableOut(BaseModel):
    version: int
    effective_at: datetime
    levels: list[Level]
    published_by: str
    published_at: datetime


class RoyaltyTablesOut(BaseModel):
    tables: list[RoyaltyTableOut]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contributor_id: str = Field(min_length=1, max_length=200)
    amount_minor: int = Field(
        ge=-(10**12),
        le=10**12,
        description="Credit (> 0) or debit (< 0); never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    currency: Currency = _CURRENCY
    reason: str = Field(min_length=3, max_length=500)


class LedgerEntryOut(BaseModel):
    id: int
    contributor_id: str
    currency: Currency
    kind: str
    amount_minor: int
    occurred_at: datetime
    available_at: datetime
    reason: str | None = None
    actor: str | None = None


class BatchCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str | None = Field(None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM; default last month.")


class BatchTotal(BaseModel):
    currency: Currency
    payouts: int
    amount_minor: int
    net_paid_minor: int
    withholding_minor: int


class ExclusionTotal(BaseModel):
    reason: ExclusionReason
    currency: Currency
    contributors: int
    payable_minor: int


class BatchPayout(BaseModel):
    id: UUID
    contributor_id: str
    currency: Currency
    amount_minor: int
    status: PayoutStatus
    withholding_minor: int | None
    net_minor: int | None
    transfer_id: str | None
    failure_reason: str | None


class BatchExclusion(BaseModel):
    contributor_id: str
    currency: Currency
    payable_minor: int
    reason: ExclusionReason


class BatchOut(BaseModel):
    model_config = _examples(
        {
            "id": "0b8e8d4c-2f1a-4c3b-8e7d-6a5b4c3d2e1f",
            "period": "2026-11",
            "status": "draft",
            "cutoff_at": "2026-12-01T02:00:00Z",
            "created_by": "payouts-timer",
            "created_at": "2026-12-01T02:00:00Z",
            "approved_by": None,
            "approved_at": None,
            "cancelled_by": None,
            "cancelled_at": None,
            "totals": [
                {"currency": "USD", "payouts": 1, "amount_minor": 5000, "net_paid_minor": 0, "withholding_minor": 0}
            ],
            "payout_statuses": {"draft": 1},
            "exclusions_by_reason": [
                {"reason": "below_threshold", "currency": "USD", "contributors": 1, "payable_minor": 1200}
            ],
            "payouts": [
                {
                    "id": "6f1c2f4e-3a51-4f7b-9a0e-1d2c3b4a5f60",
                    "contributor_id": "contributor-1",
                    "currency": "USD",
                    "amount_minor": 5000,
                    "status": "draft",
                    "withholding_minor": None,
                    "net_minor": None,
                    "transfer_id": None,
                    "failure_reason": None,
                }
            ],
            "exclusions": [
                {
                    "contributor_id": "contributor-2",
                    "currency": "USD",
                    "payable_minor": 1200,
                    "reason": "below_threshold",
                }
            ],
        }
    )

    id: UUID
    period: str
    status: Literal["draft", "approved", "cancelled"]
    cutoff_at: datetime = Field(description="Balances payable at this time were considered.")
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    totals: list[BatchTotal] = Field(description="Per currency.")
    payout_statuses: dict[str, int]
    exclusions_by_reason: list[ExclusionTotal]
    payouts: list[BatchPayout] | None = Field(
        None, description="The first page, by contributor (detail view only); `payouts_next_cursor` pages on."
    )
    payouts_next_cursor: str | None = Field(
        None, description="Pass as `cursor` to GET .../payouts for the next page; null when all are here."
    )
    exclusions: list[BatchExclusion] | None = Field(
        None, description="The first page, by reason (detail view only); `exclusions_next_cursor` pages on."
    )
    exclusions_next_cursor: str | None = Field(
        None, description="Pass as `cursor` to GET .../exclusions for the next page; null when all are here."
    )


class BatchLinesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(None, max_length=400, description="`next_cursor` of the previous page.")
    per_page: int = Field(200, ge=1, le=500)

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)  # a bad cursor is a 400 naming the parameter
        return value


class BatchPayoutsPage(BaseModel):
    items: list[BatchPayout]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class BatchExclusionsPage(BaseModel):
    items: list[BatchExclusion]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class BatchesOut(BaseModel):
    batches: list[BatchOut]
