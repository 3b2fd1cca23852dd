"""Decode an uploaded photo once, at the size the largest rendition needs.

libvips `thumbnail` does the expensive parts in one pass: shrink-on-load (a JPEG is
decoded at 1/2, 1/4 or 1/8 scale straight from its DCT coefficients, so a 12 MP file
never exists in memory at full size), EXIF auto-rotation, and conversion of CMYK and
16-bit input to 8-bit sRGB. Everything downstream (renditions, colours, hashes,
inference) works from the small upright RGB image this returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips
from PIL import Image

from shared.imaging.inspect import ACCEPTED, sniff

# EXIF orientations 5-8 turn the picture a quarter: the stored width is the upright height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})

# Only the formats the marketplace accepts reach libvips. It could read many more (SVG, PDF, HEIF,
# FITS...), each a parser with its own attack surface; ingestion refuses them, and so does this.
ALLOWED_KINDS = frozenset(ACCEPTED)


class UndecodableImage(ValueError):
    """The bytes are not an image libvips can decode completely (corrupt, truncated, unknown format)."""


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, 8-bit, sRGB, upright, long side <= the max_side asked for
    width: int  # upright size of the original, in pixels
    height: int
    orientation: int  # EXIF orientation of the original (1 = none); already applied to `image`
    loader: str  # libvips loader that read it, e.g. "jpegload_buffer"
    colour_managed: bool  # an embedded ICC profile (or CMYK) was converted to sRGB


def decode(data: bytes, max_side: int) -> DecodedImage:
    """Decode `data` to an upright 8-bit sRGB image whose long side is at most `max_side`.

    Never upsizes. Raises UndecodableImage for anything libvips cannot read completely.
    """
    if max_side < 1:
        raise ValueError("max_side must be positive")
    if sniff(data[:64]) not in ALLOWED_KINDS:  # magic bytes, before any parser sees the data
        raise UndecodableImage("not a JPEG, PNG, WebP or TIFF file")
    try:
        header = pyvips.Image.new_from_buffer(data, "")  # header only; pixels are not decoded here
        orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        if not 1 <= orientation <= 8:
            orientation = 1
        width, height = header.width, header.height
        if orientation in _QUARTER_TURNS:
            width, height = height, width
        has_profile = bool(header.get_typeof("icc-profile-data"))
        options: dict[str, object] = {"height": max_side, "size": "down"}
        if has_profile:
            # Transform with the embedded profile (Adobe RGB, Display P3, a CMYK press profile...).
            # Only then: an ICC transform costs as much as the whole shrink-on-load decode.
            options["export_profile"] = "srgb"
        # fail_on=truncated: a cut-off file is an error, not a picture with a grey bottom half.
        thumb = pyvips.Image.thumbnail_buffer(data, max_side, option_string="fail_on=truncated", **options)
        thumb = _to_srgb8(thumb)
        pixels = thumb.numpy()  # decoding happens here (libvips is lazy), so errors surface here too
    except pyvips.Error as exc:
        raise UndecodableImage(_first_line(exc)) from exc
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else "unknown"
    return DecodedImage(
        image=Image.fromarray(pixels, "RGB"),
        width=width,
        height=height,
        orientation=orientation,
        loader=loader,
        colour_managed=has_profile or header.interpretation == "cmyk",
    )


def _to_srgb8(image: pyvips.Image) -> pyvips.Image:
    if image.interpretation != "srgb" or image.format != "uchar":
        # Grey, 16-bit (rgb16/grey16), Lab, CMYK without a profile: libvips knows each conversion.
        image = image.colourspace("srgb")
    if image.hasalpha():
        # Transparent areas become white, as they look on the portal's white page.
        image = image.flatten(background=[255])
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    elif image.bands > 3:
        image = image.extract_band(0, n=3)
    return image


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # libvips puts the operation first ("unable to call thumbnail_buffer") and the cause after it.
    return "; ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
