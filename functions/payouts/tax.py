"""Tax profiles: per-form validation, the TIN sealed at rest, and the withholding rate a profile earns.

The TIN travels only inbound (PUT body) and into the envelope cipher. Responses show its last 4
characters; no log line, event or problem detail names it (validation errors say which field and
why, never echo the value).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import pycountry
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.crypto import EnvelopeCipher
from shared.db import Database
from shared.http import Problem

log = structlog.get_logger(__name__)

FormType = Literal["W-9", "W-8BEN", "W-8BEN-E"]

# No treaty or no valid claim: the statutory rate on US-source royalties (IRC §1441).
STATUTORY_RATE_BP = 3000

# Royalty rates for copyrights of artistic works under US income tax treaties (IRS Publication 515,
# Table 1, "Copyrights" / "Other royalties" column), for treaty residents filing W-8BEN(-E). A country
# not listed gets the statutory 30%. Reviewed for this table; tax staff own later changes.
TREATY_RATES_BP: dict[str, int] = {
    "AT": 0, "AU": 500, "BE": 0, "BG": 500, "CA": 0, "CN": 1000, "CY": 0, "CZ": 1000, "DE": 0,
    "DK": 0, "EE": 1000, "EG": 0, "ES": 0, "FI": 0, "FR": 0, "GB": 0, "GR": 0, "HU": 0, "IE": 0,
    "IL": 1000, "IN": 1500, "IS": 0, "IT": 500, "JM": 1000, "JP": 0, "KR": 1000, "LT": 1000,
    "LU": 0, "LV": 1000, "MA": 1000, "MT": 1000, "MX": 1000, "NL": 0, "NO": 0, "NZ": 500,
    "PH": 1500, "PK": 0, "PL": 1000, "PT": 1000, "RO": 1000, "SE": 0, "SI": 500, "SK": 1000,
    "TH": 500, "TN": 1000, "TR": 500, "TT": 1500, "UA": 1000, "VE": 500, "ZA": 0,
}  # fmt: skip

_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-?(?!00)\d{2}-?(?!0000)\d{4}")
_EIN = re.compile(r"(?!00)\d{2}-?\d{7}")
_FOREIGN_TIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./-]{2,29}")


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(None, max_length=100, description="State, province or county.")
    postal_code: str | None = Field(None, max_length=20)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. US, DE.")


class TaxInfoIn(BaseModel):
    """One tax form's facts. W-9: US persons (SSN or EIN). W-8BEN: non-US individuals. W-8BEN-E: non-US
    entities. `treaty_claim` asks for the treaty rate of `country` (W-8 forms only)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "form_type": "W-8BEN",
                    "legal_name": "Ana Silva",
                    "address": {
                        "line1": "Rua Augusta 10",
                        "city": "Lisboa",
                        "postal_code": "1100-053",
                        "country": "PT",
                    },
                    "country": "PT",
                    "tin": "123456789",
                    "treaty_claim": True,
                }
            ]
        },
    )

    form_type: FormType
    legal_name: str = Field(min_length=1, max_length=200)
    address: Address
    country: str = Field(min_length=2, max_length=2, description="Country of tax residence, ISO 3166-1 alpha-2.")
    tin: SecretStr = Field(description="Tax id: SSN or EIN on a W-9, the foreign TIN on a W-8. Never returned.")
    treaty_claim: bool = False


class TaxInfoOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "form_type": "W-8BEN",
                    "legal_name": "Ana Silva",
                    "address": {
                        "line1": "Rua Augusta 10",
                        "city": "Lisboa",
                        "postal_code": "1100-053",
                        "country": "PT",
                    },
                    "country": "PT",
                    "tin_last4": "6789",
                    "treaty_claim": True,
                    "withholding_rate_bp": 1000,
                    "updated_at": "2026-12-06T21:00:00Z",
                }
            ]
        }
    )

    form_type: FormType
    legal_name: str
    address: Address
    country: str
    tin_last4: str = Field(description="The last 4 characters of the tax id; the rest never leaves the service.")
    treaty_claim: bool
    withholding_rate_bp: int = Field(description="Withheld from each payout, in basis points (3000 = 30%).")
    updated_at: datetime


def _is_country(code: str) -> bool:
    return code.isupper() and pycountry.countries.get(alpha_2=code) is not None


def form_errors(info: TaxInfoIn) -> list[dict[str, str]]:
    """What the form's own rules refuse, one entry per field (the value is never echoed)."""
    errors: list[dict[str, str]] = []

    def bad(name: str, reason: str) -> None:
        errors.append({"name": name, "in": "body", "reason": reason})

    if not _is_country(info.country):
        bad("country", "must be an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE")
    if not _is_country(info.address.country):
        bad("address.country", "must be an ISO 3166-1 alpha-2 code in capitals, e.g. US or DE")
    if not info.legal_name.strip():
        bad("legal_name", "is required")
    tin = info.tin.get_secret_value().strip()
    if info.form_type == "W-9":
        if info.country != "US":
            bad("country", "a W-9 is for US persons: country must be US (non-US persons file a W-8)")
        if not (_SSN.fullmatch(tin) or _EIN.fullmatch(tin)):
            bad("tin", "a W-9 needs a valid SSN (AAA-GG-SSSS) or EIN (XX-XXXXXXX), 9 digits")
        if info.treaty_claim:
            bad("treaty_claim", "US persons cannot claim treaty benefits")
    else:
        if info.country == "US":
            bad("country", f"a {info.form_type} is for non-US persons; US persons file a W-9")
        if not _FOREIGN_TIN.fullmatch(tin):
            bad("tin", "the foreign tax id must be 3-30 letters, digits, spaces or . / -")
        if info.treaty_claim and info.country not in TREATY_RATES_BP:
            bad("treaty_claim", "the US has no income tax treaty covering royalties with this country")
    return errors


def withholding_rate_bp(form_type: str, country: str, treaty_claim: bool) -> int:
    """0% with a valid W-9, the treaty rate for a treaty country claimed on a W-8, else 30%."""
    if form_type == "W-9":
        return 0
    if treaty_claim and country in TREATY_RATES_BP:
        return TREATY_RATES_BP[country]
    return STATUTORY_RATE_BP


def _last4(tin: str) -> str:
    digits = re.sub(r"[^A-Za-z0-9]", "", tin)
    return digits[-4:]


def _out(row: Any) -> TaxInfoOut:
    return TaxInfoOut(
        form_type=row["form_type"],
        legal_name=row["legal_name"],
        address=Address.model_validate(row["address"]),
        country=row["country"],
        tin_last4=row["tin_last4"],
        treaty_claim=row["treaty_country"] is not None,
        withholding_rate_bp=row["withholding_rate_bp"],
        updated_at=row["updated_at"],
    )


async def save_tax_info(db: Database, cipher: EnvelopeCipher, contributor_id: str, info: TaxInfoIn) -> TaxInfoOut:
    errors = form_errors(info)
    if errors:
        names = ", ".join(dict.fromkeys(e["name"] for e in errors))
        raise Problem(422, "invalid-tax-info", "Invalid tax information", f"Check: {names}.", errors=errors)
    tin = info.tin.get_secret_value().strip()
    sealed = await cipher.seal(tin, context=f"payouts.tax:{contributor_id}")
    rate = withholding_rate_bp(info.form_type, info.country, info.treaty_claim)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            """
            insert into payouts.tax_profiles (contributor_id, form_type, legal_name, address, country,
                tin_ciphertext, tin_nonce, tin_wrapped_key, tin_kek_id, tin_last4, treaty_country,
                withholding_rate_bp, updated_at)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
            on conflict (contributor_id) do update set form_type = excluded.form_type,
                legal_name = excluded.legal_name, address = excluded.address, country = excluded.country,
                tin_ciphertext = excluded.tin_ciphertext, tin_nonce = excluded.tin_nonce,
                tin_wrapped_key = excluded.tin_wrapped_key, tin_kek_id = excluded.tin_kek_id,
                tin_last4 = excluded.tin_last4, treaty_country = excluded.treaty_country,
                withholding_rate_bp = excluded.withholding_rate_bp, updated_at = now()
            returning *
            """,
            contributor_id,
            info.form_type,
            info.legal_name.strip(),
            info.address.model_dump(),
            info.country,
            sealed.ciphertext,
            sealed.nonce,
            sealed.wrapped_key,
            sealed.kek_id,
            _last4(tin),
            info.country if info.treaty_claim else None,
            rate,
        )
    log.info("payouts.tax_info_saved", form_type=info.form_type, withholding_rate_bp=rate)
    return _out(row)


async def get_tax_info(db: Database, contributor_id: str) -> TaxInfoOut | None:
    async with db.connection() as conn:
        row = await conn.fetchrow("select * from payouts.tax_profiles where contributor_id = $1", contributor_id)
    return None if row is None else _out(row)
