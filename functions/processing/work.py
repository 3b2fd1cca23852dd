"""The CPU-bound part of processing one photo, as one synchronous function run in a worker thread.

Decode once at preview size (shrink-on-load), then derive everything from that small
upright sRGB picture: renditions, colours, hashes, and the picture the models see.
The benchmark's baseline calls the same function, so it measures exactly this work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PIL import Image

from shared.config import Settings
from shared.imaging.colors import NamedColor, dominant_colors
from shared.imaging.decode import DecodedImage, decode
from shared.imaging.exif import ExifSummary, read_exif
from shared.imaging.phash import phash
from shared.imaging.placeholder import blurhash_of
from shared.imaging.renditions import Rendition, RenditionSpec, make_renditions
from shared.storage.port import THUMBNAILS, WATERMARKED

# rendition name -> public container it is served from
RENDITION_CONTAINERS = {"small": THUMBNAILS, "medium": THUMBNAILS, "preview": WATERMARKED}


@dataclass(frozen=True)
class ProcessingOptions:
    preview_px: int = 1000
    thumbnail_px: int = 450
    thumbnail_small_px: int = 260
    jpeg_quality: int = 82
    watermark_text: str = "stock marketplace"

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessingOptions:
        return cls(
            preview_px=settings.PROCESSING_PREVIEW_PX,
            thumbnail_px=settings.PROCESSING_THUMBNAIL_PX,
            thumbnail_small_px=settings.PROCESSING_THUMBNAIL_SMALL_PX,
            jpeg_quality=settings.PROCESSING_JPEG_QUALITY,
            watermark_text=settings.PROCESSING_WATERMARK_TEXT,
        )

    @property
    def specs(self) -> list[RenditionSpec]:
        return [
            RenditionSpec("small", self.thumbnail_small_px),
            RenditionSpec("medium", self.thumbnail_px),
            RenditionSpec("preview", self.preview_px, watermark=True),
        ]


@dataclass(frozen=True)
class ImageWork:
    decoded: DecodedImage
    exif: ExifSummary
    renditions: list[Rendition]
    colors: list[NamedColor]
    blurhash: str
    phash: int
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def analysis_input(self) -> Image.Image:
        """What the models see: the medium thumbnail's pixels (models resize to ~224 px anyway)."""
        return self.rendition("medium").pixels

    def rendition(self, name: str) -> Rendition:
        return next(r for r in self.renditions if r.spec.name == name)


def render_and_describe(data: bytes, options: ProcessingOptions) -> ImageWork:
    """Everything processing derives from the pixels, except inference. Raises UndecodableImage."""
    started = time.perf_counter()
    decoded = decode(data, options.preview_px)
    decoded_at = time.perf_counter()
    return describe_decoded(decoded, data, options, stage_ms={"decode": _ms(started, decoded_at)})


def describe_decoded(
    decoded: DecodedImage, data: bytes, options: ProcessingOptions, *, stage_ms: dict[str, float] | None = None
) -> ImageWork:
    """Renditions, colours, hashes and EXIF of a photo decoded once: every rendition and model shares it."""
    decoded_at = time.perf_counter()
    exif = read_exif(data)
    renditions = make_renditions(
        decoded.image, options.specs, quality=options.jpeg_quality, watermark_text=options.watermark_text
    )
    rendered_at = time.perf_counter()
    small = next(r for r in renditions if r.spec.name == "small").pixels
    work = ImageWork(
        decoded=decoded,
        exif=exif,
        renditions=renditions,
        colors=dominant_colors(small),
        blurhash=blurhash_of(small),
        phash=phash(small),
        stage_ms={
            **(stage_ms or {}),
            "render": _ms(decoded_at, rendered_at),
            "describe": _ms(rendered_at, time.perf_counter()),
        },
    )
    return work


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)
