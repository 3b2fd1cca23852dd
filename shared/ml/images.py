"""Checks and resizing shared by every image model: what can be analysed, and centre crops at model size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from shared.ml import ModelInputError

# Below this a classifier sees only interpolated blur: such an input can never give a meaningful result.
MIN_SIDE = 32


def check_images(images: Sequence[Image.Image]) -> None:
    """Raise ModelInputError (permanent) for anything the models must not be fed."""
    if isinstance(images, Image.Image):
        raise TypeError("analyze() takes a sequence of images, not one image")
    for position, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise ModelInputError(f"image {position}: expected a PIL image, got {type(image).__name__}")
        if image.mode != "RGB":
            raise ModelInputError(
                f"image {position}: mode {image.mode!r}; the models take 8-bit RGB (convert to sRGB 'RGB' first)"
            )
        if min(image.size) < MIN_SIDE:
            raise ModelInputError(
                f"image {position}: {image.width}x{image.height} px is too small to analyse "
                f"(minimum {MIN_SIDE} px a side)"
            )


def shrink(image: Image.Image, shortest_side: int) -> Image.Image:
    """A copy no larger than needed: the shortest side at most `shortest_side` (never upscaled).

    reducing_gap lets Pillow first reduce by an integer factor (cheap box filter), then resample: a
    12-megapixel photo becomes a 256 px thumbnail in milliseconds, with the same look as a full resample.
    """
    scale = shortest_side / min(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def center_crop_array(
    image: Image.Image,
    size: int,
    *,
    resize_to: int | None = None,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> np.ndarray:
    """Resize the shortest side to `resize_to` (default: size), centre-crop size x size, as HWC float32 0..255."""
    target = resize_to or size
    scale = target / min(image.size)
    width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    resized = image.resize((width, height), resample, reducing_gap=2.0)
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)
