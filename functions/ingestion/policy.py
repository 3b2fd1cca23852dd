"""The ingestion rules that settings decide, gathered once so handlers take them as one argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from functions.ingestion.quotas import UploadQuota
from shared.config import Settings
from shared.imaging.inspect import Limits


@dataclass(frozen=True)
class IngestionPolicy:
    max_upload_bytes: int = 100 * 1024 * 1024
    min_megapixels: float = 4.0
    max_image_pixels: int = 150_000_000
    upload_ttl: timedelta = timedelta(minutes=15)
    near_duplicate_distance: int = 7
    quota: UploadQuota | None = None  # None: unlimited (tests of other rules)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestionPolicy:
        return cls(
            max_upload_bytes=settings.MAX_UPLOAD_BYTES,
            min_megapixels=settings.MIN_UPLOAD_MEGAPIXELS,
            max_image_pixels=settings.MAX_IMAGE_PIXELS,
            upload_ttl=timedelta(seconds=settings.UPLOAD_SAS_TTL_SECONDS),
            near_duplicate_distance=settings.NEAR_DUPLICATE_MAX_DISTANCE,
            quota=UploadQuota(settings.UPLOAD_QUOTA_FILES_PER_DAY, settings.UPLOAD_QUOTA_BYTES_PER_DAY),
        )

    @property
    def limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_upload_bytes, max_pixels=self.max_image_pixels, min_megapixels=self.min_megapixels
        )
