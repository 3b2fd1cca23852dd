"""The automatic moderation policy: which reasons keep a processed image from going live on its own."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from shared.bus.events import ImageListing
from shared.config import Settings

# Reasons, in the order they are reported; the contributor sees them on the image.
NSFW_SCORE = "nsfw_score"
NEAR_DUPLICATE = "near_duplicate_of"
LOW_RESOLUTION = "low_resolution"
MISSING_TITLE = "missing_title"
MISSING_KEYWORDS = "missing_keywords"
REASONS = (NSFW_SCORE, NEAR_DUPLICATE, LOW_RESOLUTION, MISSING_TITLE, MISSING_KEYWORDS)


@dataclass(frozen=True)
class ModerationPolicy:
    max_safety_score: float = 0.3
    min_keywords: int = 5
    min_megapixels: float = 4.0
    require_title: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ModerationPolicy:
        return cls(
            max_safety_score=settings.MODERATION_MAX_SAFETY_SCORE,
            min_keywords=settings.MODERATION_MIN_KEYWORDS,
            min_megapixels=settings.MODERATION_MIN_MEGAPIXELS,
            require_title=settings.MODERATION_REQUIRE_TITLE,
        )

    def reasons(self, listing: ImageListing, near_duplicate_of: UUID | None) -> list[str]:
        """Why a human must look at this image; empty means it may be approved automatically."""
        found = []
        if listing.safety_score >= self.max_safety_score:
            found.append(NSFW_SCORE)
        if near_duplicate_of is not None:
            found.append(NEAR_DUPLICATE)
        if listing.width * listing.height < self.min_megapixels * 1_000_000:
            found.append(LOW_RESOLUTION)
        if self.require_title and not listing.title.strip():
            found.append(MISSING_TITLE)
        if len({k.strip().casefold() for k in listing.keywords if k.strip()}) < self.min_keywords:
            found.append(MISSING_KEYWORDS)
        return found
