"""Public renditions: the right sizes, a visible tiled watermark on previews, and no metadata at all."""

from __future__ import annotations

import io

import blurhash
import numpy as np
import pytest
from PIL import Image

from shared.imaging.decode import decode
from shared.imaging.placeholder import blurhash_of
from shared.imaging.renditions import RenditionSpec, encode_jpeg, fit, make_renditions
from shared.imaging.watermark import apply_watermark
from tests.fixtures import bad_images
from tests.fixtures.photos import photo

SPECS = [RenditionSpec("small", 260), RenditionSpec("medium", 450), RenditionSpec("preview", 1000, watermark=True)]


def open_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    return img


def test_each_rendition_has_its_long_side_and_keeps_the_aspect_ratio():
    decoded = decode(bad_images.jpeg_with_orientation(6), 1000)  # portrait once upright
    made = {r.spec.name: r for r in make_renditions(decoded.image, SPECS)}
    assert [(made[n].width, made[n].height) for n in ("small", "medium", "preview")] == [
        (173, 260),
        (300, 450),
        (667, 1000),
    ]
    for rendition in made.values():
        img = open_jpeg(rendition.data)
        assert img.size == (rendition.width, rendition.height)
        assert img.mode == "RGB"


def test_renditions_carry_no_exif_gps_xmp_or_profile_from_the_camera_file():
    camera_file = bad_images.jpeg_with_gps()
    assert Image.open(io.BytesIO(camera_file)).getexif()  # the source does carry EXIF with GPS
    for rendition in make_renditions(decode(camera_file, 1000).image, SPECS):
        img = open_jpeg(rendition.data)
        assert not img.getexif()
        assert not {"exif", "xmp", "icc_profile", "photoshop"} & set(img.info)
        assert b"Exif\x00\x00" not in rendition.data and b"http://ns.adobe.com/xap" not in rendition.data


def test_the_preview_watermark_is_visible_all_over_and_thumbnails_are_clean():
    picture = photo("china", megapixels=2)
    made = {r.spec.name: r for r in make_renditions(picture, SPECS)}
    preview = np.asarray(open_jpeg(made["preview"].data), dtype=np.int16)
    plain = np.asarray(fit(picture, 1000), dtype=np.int16)
    changed = np.abs(preview - plain).max(axis=2) > 40  # well beyond JPEG noise
    height, width = changed.shape
    quadrants = [
        changed[: height // 2, : width // 2],
        changed[: height // 2, width // 2 :],
        changed[height // 2 :, : width // 2],
        changed[height // 2 :, width // 2 :],
    ]
    assert all(q.mean() > 0.01 for q in quadrants)  # tiled: no clean corner to crop
    assert changed.mean() < 0.35  # the photo stays easy to judge
    medium = np.asarray(open_jpeg(made["medium"].data), dtype=np.int16)
    medium_changed = np.abs(medium - np.asarray(fit(picture, 450), dtype=np.int16)).max(axis=2) > 40
    assert medium_changed.mean() < changed.mean() / 10  # resampling and JPEG noise only: no watermark


def test_watermarking_is_visible_on_dark_and_bright_pictures():
    for shade in (0, 255):
        flat = Image.new("RGB", (800, 600), (shade,) * 3)
        marked = np.asarray(apply_watermark(flat), dtype=np.int16)
        assert (np.abs(marked - shade).max(axis=2) > 40).mean() > 0.02


def test_encode_jpeg_writes_a_baseline_jpeg_of_the_pixels():
    picture = photo("coffee")
    back = open_jpeg(encode_jpeg(picture, quality=90))
    assert np.abs(np.asarray(back, dtype=np.int16) - np.asarray(picture, dtype=np.int16)).mean() < 4


@pytest.mark.parametrize("name", ["coffee", "rocket"])
def test_the_blurhash_placeholder_decodes_to_the_pictures_average_colour(name):
    picture = photo(name)
    value = blurhash_of(picture)
    assert blurhash.is_valid_blurhash(value) and len(value) == 28  # 4 x 3 components
    painted = blurhash.decode(value, 32, 32)
    assert np.abs(np.asarray(painted, dtype=float).mean(axis=(0, 1)) - np.asarray(picture).mean(axis=(0, 1))).max() < 25
