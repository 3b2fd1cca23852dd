"""Is this upload an image we accept? Checks in order of cost, so a hostile file is refused before decoding.

1. size: empty or over the limit (the caller checks the blob's size before even downloading it);
2. real type from magic bytes: JPEG, PNG, WebP or TIFF, whatever the file name says;
3. the header, read by Pillow restricted to that one format: pixel count against the decompression-bomb
   limit (and Pillow's own MAX_IMAGE_PIXELS guard), animation or multiple pages, minimum resolution;
4. a full decode by libvips (sequential, shrink-on-load for JPEG/WebP, so memory stays small even at
   the pixel limit) that fails on truncated or corrupt data, and yields the perceptual hash.

Every refusal is a `Rejected` with a stable `code` and a message written for the contributor.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyvips
from PIL import Image, UnidentifiedImageError

from shared.imaging.phash import phash

# kind -> (Pillow format, MIME type)
ACCEPTED: Final[dict[str, tuple[str, str]]] = {
    "jpeg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
    "tiff": ("TIFF", "image/tiff"),
}
ACCEPTED_CONTENT_TYPES: Final = frozenset(mime for _, mime in ACCEPTED.values())
SNIFF_BYTES: Final = 1024  # enough for every signature below
_PHASH_DECODE_SIDE = 256  # the decode check renders this small; the hash needs only 32x32

# Names of things people upload by mistake, for a message that says what the file really is.
_DESCRIPTIONS: Final = {
    "gif": "a GIF image",
    "html": "an HTML document",
    "svg": "an SVG drawing",
    "xml": "an XML document",
    "pdf": "a PDF document",
    "bmp": "a BMP image",
    "heic": "a HEIC/AVIF image",
    "zip": "a ZIP archive",
    "unknown": "not an image we recognise",
}


class Rejected(Exception):
    """The file is refused; `code` is stable (API clients switch on it), `message` is for the contributor."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageFacts:
    kind: str  # "jpeg", "png", "webp", "tiff"
    content_type: str
    width: int  # as stored, before any EXIF orientation
    height: int
    phash: int  # unsigned 64-bit, of the upright picture

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int
    min_megapixels: float


def sniff(head: bytes) -> str:
    """The file's real kind from its first bytes: one of ACCEPTED, or a name from _DESCRIPTIONS."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"BM"):
        return "bmp"
    if head[4:8] == b"ftyp":
        return "heic"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "svg"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "html"
    if text.startswith(b"<?xml"):
        return "xml"
    return "unknown"


def check_size(size: int, limits: Limits) -> None:
    if size == 0:
        raise Rejected("empty-file", "The file is empty (0 bytes); upload it again.")
    if size > limits.max_bytes:
        raise Rejected(
            "too-large",
            f"The file is {size:,} bytes ({_mb(size)}); the largest accepted upload is "
            f"{limits.max_bytes:,} bytes ({_mb(limits.max_bytes)}).",
        )


def inspect_image(data: bytes, limits: Limits) -> ImageFacts:
    """Validate an upload held in memory; return what was learnt, or raise `Rejected`."""
    kind, content_type, width, height = check_header(data, limits)
    return ImageFacts(kind, content_type, width, height, _decode_and_hash(data))


def check_header(data: bytes, limits: Limits) -> tuple[str, str, int, int]:
    """Every check that needs no decoding (size, real type, pixel limit, animation, resolution):
    kind, content type, width and height, or `Rejected`. A caller that decodes the picture anyway
    (search by image) pairs this with its own decode instead of decoding twice."""
    check_size(len(data), limits)
    kind = sniff(data[:SNIFF_BYTES])
    if kind not in ACCEPTED:
        if kind == "gif" and _gif_is_animated(data):
            raise Rejected("animated", "Animated images are not accepted; upload a single still photo.")
        raise Rejected(
            "unsupported-type",
            f"The file is {_DESCRIPTIONS[kind]}, whatever its name says; upload a JPEG, PNG, WebP or TIFF photo.",
        )
    pillow_format, content_type = ACCEPTED[kind]
    width, height, frames = _read_header(data, pillow_format, limits)
    if width * height > limits.max_pixels:
        raise Rejected(
            "too-many-pixels",
            f"The image declares {width} x {height} pixels ({width * height / 1e6:.0f} MP); "
            f"the limit is {limits.max_pixels / 1e6:.0f} MP.",
        )
    if frames > 1:
        raise Rejected("animated", "Animated images are not accepted; upload a single still photo.")
    if width * height < limits.min_megapixels * 1_000_000:
        raise Rejected(
            "too-small",
            f"The image is {width} x {height} pixels ({width * height / 1e6:.1f} MP); "
            f"the minimum is {limits.min_megapixels:g} MP.",
        )
    return kind, content_type, width, height


def _read_header(data: bytes, pillow_format: str, limits: Limits) -> tuple[int, int, int]:
    """Width, height and frame count from the header alone (Pillow opens lazily)."""
    try:
        with warnings.catch_warnings():
            # Our own limit is the policy; Pillow's warning threshold would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as img:
                width, height = img.size
                # Only PNG (APNG) and WebP animate. A JPEG's extra MPF pictures (previews, depth and gain
                # maps from phones) and a TIFF's further pages are not animation: the first picture is used.
                animated = pillow_format in ("PNG", "WEBP") and getattr(img, "is_animated", False)
                frames = getattr(img, "n_frames", 1) if animated else 1
    except Image.DecompressionBombError:
        raise Rejected(
            "too-many-pixels",
            f"The image declares more pixels than can be processed safely (limit {limits.max_pixels / 1e6:.0f} MP).",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise Rejected("corrupt", f"The file's header is damaged ({_short(exc)}); export the photo again.") from None
    if width <= 0 or height <= 0:
        raise Rejected("corrupt", "The file's header declares no pixels; export the photo again.")
    return width, height, frames


def _decode_and_hash(data: bytes) -> int:
    """Decode every byte (truncated or corrupt data fails) at a small size, and hash the upright picture."""
    try:
        thumb = pyvips.Image.thumbnail_buffer(
            data,
            _PHASH_DECODE_SIDE,
            # fail on truncation and errors; mere warnings (e.g. stray bytes between markers) are common in
            # camera files that display fine, so they pass.
            option_string="fail_on=truncated",
        )
        grey = thumb.colourspace("b-w").cast("uchar")
        if grey.bands > 1:  # alpha survives colourspace(): drop it
            grey = grey.extract_band(0)
        pixels = np.ndarray(
            buffer=grey.write_to_memory(), dtype=np.uint8, shape=(grey.height, grey.width)
        )  # evaluating the pipeline is what decodes the whole file
    except pyvips.Error as exc:
        raise Rejected(
            "corrupt", f"The image data is truncated or corrupt ({_short(exc)}); upload the complete file."
        ) from None
    return phash(Image.fromarray(pixels))


def _gif_is_animated(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data), formats=["GIF"]) as img:
            return bool(getattr(img, "is_animated", False))
    except Exception:
        return False


def _short(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text[:160]


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
