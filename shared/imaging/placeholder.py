"""BlurHash placeholders: a ~30-character string the portals paint while the thumbnail loads."""

from __future__ import annotations

import blurhash
from PIL import Image

_SAMPLE_SIDE = 32  # the hash keeps 4x3 cosine components; more input pixels change nothing visible


def blurhash_of(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    sample = image.convert("RGB")  # a copy: blurhash.encode closes the image it is given
    sample.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE), Image.Resampling.BOX)
    return blurhash.encode(sample, x_components, y_components)
