"""Licenses the buyer holds, and downloads of their originals through short-lived read-only SAS links."""

from __future__ import annotations

import posixpath
import re
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

import asyncpg

from functions.checkout.models import LicenseOut, LicensesOut
from shared.db import Database
from shared.http import Problem
from shared.storage import ORIGINALS, BlobStore

# Never longer than this, whatever the setting says: a leaked link must die quickly.
MAX_DOWNLOAD_LINK_LIFETIME = timedelta(minutes=15)


def license_out(row: asyncpg.Record) -> LicenseOut:
    return LicenseOut(
        id=row["id"],
        image_id=row["image_id"],
        license_type=row["license_type"],
        title=row["title"],
        order_id=row["order_id"],
        subscription_id=row["subscription_id"],
        issued_at=row["issued_at"],
        usable=row["revoked_at"] is None,
        download_count=row["download_count"],
        download_url=f"/api/licenses/{row['id']}/download",
    )


async def list_licenses(db: Database, buyer_id: str, limit: int = 500) -> LicensesOut:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "select * from checkout.licenses where buyer_id = $1 order by issued_at desc, id limit $2", buyer_id, limit
        )
    return LicensesOut(licenses=[license_out(row) for row in rows])


def download_file_name(file_name: str, original_blob: str, image_id: UUID) -> str:
    """The name the browser saves the original under: the contributor's, else the image id."""
    extension = posixpath.splitext(original_blob)[1].lower()
    name = posixpath.basename(file_name.replace("\\", "/")).strip()
    return name or f"{image_id}{extension}"


def content_disposition(file_name: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", file_name)[:150] or "image"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


async def download_link(db: Database, storage: BlobStore, buyer_id: str, license_id: UUID, lifetime: timedelta) -> str:
    """A read-only SAS URL for exactly this license's original, counting the download.

    Another buyer's license is indistinguishable from a missing one (404). A revoked license
    (refunded order) is refused. A license of an image taken down later stays downloadable.
    """
    lifetime = min(lifetime, MAX_DOWNLOAD_LINK_LIFETIME)
    async with db.transaction() as conn:
        row = await conn.fetchrow(
            "update checkout.licenses set download_count = download_count + 1, last_downloaded_at = now() "
            "where id = $1 and buyer_id = $2 and revoked_at is null "
            "returning image_id, original_blob, file_name",
            license_id,
            buyer_id,
        )
        if row is None:
            revoked = await conn.fetchval(
                "select true from checkout.licenses where id = $1 and buyer_id = $2", license_id, buyer_id
            )
            if revoked:
                raise Problem(410, "license-revoked", "License revoked", "This license was revoked (order refunded).")
            raise Problem(404, "license-not-found", "License not found", f"You hold no license {license_id}.")
        name = download_file_name(row["file_name"], row["original_blob"], row["image_id"])
        # Signed inside the transaction: if signing fails, the download is not counted.
        return await storage.sas_url(
            ORIGINALS,
            row["original_blob"],
            permissions="r",
            expires_in=lifetime,
            content_disposition=content_disposition(name),
        )
