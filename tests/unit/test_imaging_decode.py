"""Decoding once at preview size: upright, 8-bit sRGB, whatever the camera or editor wrote."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pyvips
from PIL import Image

from shared.imaging.decode import UndecodableImage, decode
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo, png_bytes


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    b = b.resize(a.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b.convert("RGB"), dtype=np.int16)).mean())


def test_a_12_megapixel_jpeg_is_decoded_straight_to_preview_size_and_reports_its_full_size():
    original = photo("china", megapixels=12)
    decoded = decode(jpeg_bytes(original), 1000)
    assert decoded.image.mode == "RGB"
    assert max(decoded.image.size) == 1000
    assert (decoded.width, decoded.height) == original.size
    assert decoded.loader.startswith("jpegload")
    assert mean_abs_diff(decoded.image, original) < 6


def test_a_picture_smaller_than_asked_is_not_upsized():
    decoded = decode(jpeg_bytes(photo("coffee")), 1000)  # 600 x 400
    assert decoded.image.size == (600, 400)


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [(6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90)],  # 6: turn 90° clockwise to view
)
def test_exif_orientation_is_applied_so_the_picture_comes_out_upright(orientation, upright):
    landscape = photo("coffee", megapixels=5)
    decoded = decode(bad_images.jpeg_with_orientation(orientation), 1000)

    assert decoded.orientation == orientation
    assert decoded.width < decoded.height  # stored landscape, meant to be seen portrait
    assert (decoded.width, decoded.height) == (landscape.height, landscape.width)
    assert decoded.image.height == 1000
    wrong_way = Image.Transpose.ROTATE_90 if upright is Image.Transpose.ROTATE_270 else Image.Transpose.ROTATE_270
    assert mean_abs_diff(decoded.image, landscape.transpose(upright)) < 8
    assert mean_abs_diff(decoded.image, landscape.transpose(wrong_way)) > 30


def test_a_cmyk_jpeg_becomes_8_bit_srgb_with_its_colours():
    source = photo("coffee", megapixels=5)
    decoded = decode(bad_images.cmyk_jpeg(), 1000)
    assert decoded.image.mode == "RGB"
    assert decoded.colour_managed
    # Colour-managed CMYK -> sRGB is not the naive inverse, but the picture must stay recognisably itself.
    assert mean_abs_diff(decoded.image, source) < 40
    red, green, blue = np.asarray(decoded.image, dtype=float).reshape(-1, 3).mean(axis=0)
    assert red > green > 0 and red > blue  # a red cup on a warm table stays warm


def test_an_embedded_colour_profile_is_converted_to_srgb():
    srgb = np.zeros((300, 400, 3), np.uint8)
    srgb[...] = (220, 40, 40)
    # The same red stored as Display P3 numbers, with the P3 profile embedded (as phones write them).
    p3 = pyvips.Image.new_from_array(srgb, interpretation="srgb").icc_transform("p3", input_profile="srgb")
    stored = p3.numpy()[0, 0]
    assert np.abs(stored.astype(int) - (220, 40, 40)).max() > 10  # the raw numbers are not the sRGB ones

    decoded = decode(p3.jpegsave_buffer(Q=95), 1000)
    assert decoded.colour_managed
    assert np.abs(np.asarray(decoded.image, dtype=int)[150, 200] - (220, 40, 40)).max() <= 4


def test_a_broken_colour_profile_is_ignored_rather_than_failing_the_photo():
    srgb = np.zeros((300, 400, 3), np.uint8)
    srgb[...] = (220, 40, 40)
    data = bytearray(pyvips.Image.new_from_array(srgb, interpretation="srgb").jpegsave_buffer(Q=95, profile="p3"))
    assert b"ICC_PROFILE\x00" in data
    start = data.find(b"ICC_PROFILE\x00") + 14
    data[start : start + 40] = bytes(40)  # zero the profile header
    decoded = decode(bytes(data), 1000)
    assert decoded.image.size == (400, 300)


@pytest.mark.parametrize("make", [bad_images.png_16bit, bad_images.png_16bit_grey])
def test_16_bit_pngs_become_8_bit_rgb_without_losing_the_tones(make):
    source = photo("coffee", megapixels=5)
    decoded = decode(make(), 1000)
    pixels = np.asarray(decoded.image)
    assert decoded.image.mode == "RGB" and pixels.dtype == np.uint8
    assert pixels.max() > 200  # scaled down from 16 bits, not clipped or shifted
    expected = source if make is bad_images.png_16bit else source.convert("L")
    assert mean_abs_diff(decoded.image, expected) < 6


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (400, 300), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 200, 300))  # left half fully transparent
    decoded = decode(png_bytes(rgba), 1000)
    assert decoded.image.getpixel((50, 150)) == (255, 255, 255)
    assert decoded.image.getpixel((350, 150)) == (0, 0, 255)


@pytest.mark.parametrize(
    "data",
    [bad_images.truncated_jpeg(megapixels=1), bad_images.html_page(), b"", b"\xff\xd8\xff\xe0garbage"],
    ids=["truncated-jpeg", "html", "empty", "jpeg-magic-then-garbage"],
)
def test_what_cannot_be_decoded_completely_is_refused(data):
    with pytest.raises(UndecodableImage):
        decode(data, 1000)


def test_webp_and_tiff_decode_too():
    source = photo("chelsea")
    for fmt in ("WEBP", "TIFF"):
        out = io.BytesIO()
        source.save(out, fmt)
        decoded = decode(out.getvalue(), 256)
        assert max(decoded.image.size) == 256
        assert mean_abs_diff(decoded.image, source) < 8
