"""Dominant colours of a photo as named facets buyers filter by ("blue", "teal", "brown", ...).

Every pixel of a small copy is converted to CIE Lab and named from its lightness,
chroma and hue angle (LCh), which track how people name colours far better than
RGB distances do: low chroma is black, grey or white by lightness; otherwise the hue
angle picks the family, and lightness/chroma split orange from brown and pink from
red. A facet's share is the fraction of pixels with that name, and its hex the
mean sRGB of those pixels, so "blue" on a photo of the sea shows the sea's blue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from skimage.color import rgb2lab

# The fixed facet vocabulary (search filters and the portals list exactly these).
COLOR_NAMES: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "grey",
    "white",
)

_SAMPLE_SIDE = 64  # 4096 pixels: shares are stable to about a percent, and naming them costs < 1 ms
_ACHROMATIC_CHROMA = 10.0  # below this C*ab a colour reads as a neutral
_BLACK_L, _WHITE_L = 22.0, 88.0


@dataclass(frozen=True)
class NamedColor:
    name: str
    hex: str
    share: float


def name_colors(rgb: np.ndarray) -> np.ndarray:
    """Facet name of each sRGB colour in an (..., 3) uint8 array, as an array of str."""
    lab = rgb2lab(np.asarray(rgb, dtype=np.uint8)[..., :3])
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360

    dark_muted = (lightness < 60) | (chroma < 35)
    neutral = chroma < _ACHROMATIC_CHROMA
    rules = [  # first match wins
        # neutrals by lightness; very dark colours read as black whatever their hue
        (neutral & (lightness < _BLACK_L), "black"),
        (neutral & (lightness > _WHITE_L), "white"),
        (neutral, "grey"),
        ((lightness < 12) & (chroma < 25), "black"),
        # pink: the rose-to-magenta hues when light, and any very light red
        ((((hue >= 335) | (hue < 15)) & (lightness >= 50)) | ((hue < 30) & (lightness >= 70)), "pink"),
        ((hue >= 335) | (hue < 30), "red"),
        # warm hues: browns are the dark or muted reds, oranges and yellows
        ((hue < 45) & (chroma < 30) & (lightness < 60), "brown"),
        (hue < 45, "red"),
        ((hue < 80) & dark_muted, "brown"),
        (hue < 80, "orange"),
        ((hue < 105) & (lightness < 55), "brown"),
        (hue < 105, "yellow"),
        (hue < 170, "green"),
        (hue < 230, "teal"),
        (hue < 310, "blue"),
    ]
    names = np.select([condition for condition, _ in rules], [name for _, name in rules], default="purple")
    return names


def dominant_colors(image: Image.Image, *, max_colors: int = 5, min_share: float = 0.05) -> list[NamedColor]:
    """The named colours covering at least `min_share` of the picture, largest share first."""
    sample = image.convert("RGB")
    sample.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(sample).reshape(-1, 3)
    names = name_colors(pixels)
    found, counts = np.unique(names, return_counts=True)
    total = len(pixels)
    result = []
    for name, count in sorted(zip(found, counts, strict=True), key=lambda item: (-item[1], str(item[0]))):
        share = count / total
        if share < min_share or len(result) == max_colors:
            break
        mean = pixels[names == name].mean(axis=0).round().astype(int)
        result.append(NamedColor(str(name), "#{:02x}{:02x}{:02x}".format(*mean), round(float(share), 4)))
    return result
