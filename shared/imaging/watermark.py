"""The visible watermark of public previews: a text tiled diagonally over the whole picture.

Tiled, not a corner logo, so that no crop of the preview yields a clean image. White
letters with a dark outline at partial opacity stay visible on bright and dark areas
alike while the photo remains easy to judge.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

DEFAULT_TEXT = "stock marketplace"
_OPACITY = 0.42  # of the letters; the outline is a little lighter still


@lru_cache(maxsize=8)
def _tile(text: str, font_size: int) -> Image.Image:
    """One rotated copy of the text on a transparent tile, with spacing built in."""
    font = ImageFont.load_default(size=font_size)
    stroke = max(1, font_size // 14)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    width, height = right - left, bottom - top
    label = Image.new("RGBA", (width + 2 * stroke, height + 2 * stroke), (0, 0, 0, 0))
    ImageDraw.Draw(label).text(
        (stroke - left, stroke - top),
        text,
        font=font,
        fill=(255, 255, 255, round(255 * _OPACITY)),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, round(255 * _OPACITY * 0.6)),
    )
    label = label.rotate(30, expand=True, resample=Image.Resampling.BICUBIC)
    gap = font_size * 2
    tile = Image.new("RGBA", (label.width + gap, label.height + gap), (0, 0, 0, 0))
    tile.paste(label, (gap // 2, gap // 2))
    return tile


@lru_cache(maxsize=16)
def _overlay(size: tuple[int, int], text: str) -> Image.Image:
    """The tiled overlay for one picture size (previews share a handful of aspect ratios)."""
    font_size = max(12, round(max(size) / 28))
    tile = _tile(text, font_size)
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    # Every other row shifted by half a tile, so the text forms a lattice rather than columns.
    for row, y in enumerate(range(-tile.height // 2, size[1], tile.height)):
        shift = -tile.width // 2 if row % 2 else 0
        for x in range(shift, size[0], tile.width):
            overlay.alpha_composite(tile, (max(x, 0), max(y, 0)), (max(-x, 0), max(-y, 0)))
    return overlay


def apply_watermark(image: Image.Image, text: str = DEFAULT_TEXT) -> Image.Image:
    """A new RGB image: `image` with the tiled text over it."""
    base = image.convert("RGBA")
    base.alpha_composite(_overlay(base.size, text))
    return base.convert("RGB")
