"""Upload validation (shared/imaging/inspect.py) and the perceptual hash it computes (shared/imaging/phash.py)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from shared.imaging import phash as ph
from shared.imaging.inspect import Limits, Rejected, inspect_image, sniff
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo, png_bytes

LIMITS = Limits(max_bytes=100 * 2**20, max_pixels=150_000_000, min_megapixels=4.0)


def _code(data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(Rejected) as refused:
        inspect_image(data, limits)
    assert refused.value.message  # always a sentence for the contributor
    return refused.value.code


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (bad_images.zero_byte, "empty-file"),
        (bad_images.truncated_jpeg, "corrupt"),
        (bad_images.png_declaring, "too-many-pixels"),
        (bad_images.html_page, "unsupported-type"),
        (bad_images.svg_drawing, "unsupported-type"),
        (bad_images.animated_gif, "animated"),
        (bad_images.animated_webp, "animated"),
        (bad_images.too_small_jpeg, "too-small"),
    ],
    ids=["zero-byte", "truncated", "50000x50000 PNG", "HTML", "SVG", "animated GIF", "animated WebP", "below 4 MP"],
)
def test_bad_uploads_are_refused_with_a_stable_reason_code(make, code):
    assert _code(make()) == code


def test_the_pixel_limit_is_checked_from_the_header_before_any_decoding():
    # 12000 x 12000 = 144 MP declared, in a file of a few hundred bytes: a decode would need 432 MB.
    data = bad_images.png_declaring(12_000, 12_000)
    assert len(data) < 1000
    assert _code(data, Limits(max_bytes=2**20, max_pixels=100_000_000, min_megapixels=4)) == "too-many-pixels"


def test_a_truncated_png_is_corrupt_even_though_its_header_is_intact():
    data = png_bytes(photo("coffee", megapixels=5))
    assert _code(data[: len(data) // 2]) == "corrupt"


def test_the_size_limit_applies_to_the_bytes_given():
    data = jpeg_bytes(photo("coffee", megapixels=5))
    assert _code(data, Limits(max_bytes=len(data) - 1, max_pixels=10**8, min_megapixels=4)) == "too-large"


def test_the_real_type_comes_from_the_bytes_not_the_name():
    jpeg = jpeg_bytes(photo("coffee", megapixels=5))
    assert sniff(jpeg) == "jpeg"
    assert sniff(png_bytes(photo("camera"))) == "png"
    assert sniff(bad_images.html_page()) == "html"
    assert sniff(bad_images.svg_drawing()) == "svg"
    assert sniff(b"GIF89a...") == "gif"
    assert sniff(b"%PDF-1.7") == "pdf"
    assert inspect_image(jpeg, LIMITS).content_type == "image/jpeg"


@pytest.mark.parametrize(
    ("make", "content_type"),
    [
        (bad_images.cmyk_jpeg, "image/jpeg"),
        (bad_images.png_16bit, "image/png"),
        (lambda: bad_images.jpeg_with_orientation(6), "image/jpeg"),
        (lambda: bad_images.jpeg_with_orientation(8), "image/jpeg"),
        (bad_images.jpeg_with_huge_exif, "image/jpeg"),
        (bad_images.jpeg_with_gps, "image/jpeg"),
    ],
    ids=["CMYK", "16-bit PNG", "orientation 6", "orientation 8", "huge EXIF", "GPS"],
)
def test_unusual_but_valid_photos_pass(make, content_type):
    facts = inspect_image(make(), LIMITS)
    assert facts.content_type == content_type
    assert facts.megapixels >= 4


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_webp_and_tiff_are_accepted(fmt):
    out = io.BytesIO()
    photo("china", megapixels=4.5).save(out, fmt)
    facts = inspect_image(out.getvalue(), LIMITS)
    assert facts.kind == fmt.lower()


def test_extra_pictures_in_a_jpeg_or_tiff_are_not_animation_and_the_first_is_used():
    first = photo("china", megapixels=4.5)
    extras = {
        "MPO": first.resize((640, 427)),  # a JPEG with MPF pictures, as phones write previews and gain maps
        "TIFF": photo("flower").resize(first.size),
    }
    for fmt, extra in extras.items():
        out = io.BytesIO()
        first.save(out, fmt, save_all=True, append_images=[extra])
        facts = inspect_image(out.getvalue(), LIMITS)
        assert (facts.width, facts.height) == first.size
        assert ph.hamming(facts.phash, ph.phash(first)) <= 4


def test_an_animated_png_is_refused():
    frames = [photo("china", megapixels=4.5), photo("flower", megapixels=4.5)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=[frames[1].resize(frames[0].size)])
    assert _code(out.getvalue()) == "animated"


# --- perceptual hash --------------------------------------------------------------------------


def test_the_hash_survives_resizing_and_recompression_but_tells_photos_apart():
    original = photo("chelsea", megapixels=5)
    copy = Image.open(io.BytesIO(bad_images.resized_copy(jpeg_bytes(original), scale=0.5, quality=70)))
    assert ph.hamming(ph.phash(original), ph.phash(copy)) <= 4
    others = [ph.phash(photo(name)) for name in ("coffee", "rocket", "china", "flower", "astronaut")]
    assert min(ph.hamming(ph.phash(original), other) for other in others) > 12


def test_the_hash_of_a_rotated_upload_is_that_of_the_upright_picture():
    upright = photo("coffee", megapixels=5).transpose(Image.Transpose.ROTATE_270)  # what orientation 6 shows
    facts = inspect_image(bad_images.jpeg_with_orientation(6), LIMITS)
    assert ph.hamming(facts.phash, ph.phash(upright)) <= 4


def test_hash_helpers():
    value = ph.phash(photo("rocket"))
    assert 0 <= value < 2**64
    assert ph.from_signed(ph.to_signed(value)) == value
    assert -(2**63) <= ph.to_signed(value) < 2**63
    assert len(ph.to_hex(value)) == 16 and int(ph.to_hex(value), 16) == value
    assert ph.hamming(0, 2**64 - 1) == 64
    assert len(ph.band_probes(0xABCD, 0)) == 1
    assert len(ph.band_probes(0xABCD, 1)) == 17
    assert len(set(ph.band_probes(0xABCD, 2))) == 1 + 16 + 120


@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=11))
def test_pigeonhole_every_hash_within_the_distance_is_found_by_probing_its_bands(value, flipped_bits):
    """What the near-duplicate search relies on: probing each band within d // 4 bits finds all within d."""
    other = value
    for bit in flipped_bits:
        other ^= 1 << bit
    distance = ph.hamming(value, other)
    radius = distance // ph.BANDS
    probes = [set(ph.band_probes(band, radius)) for band in ph.bands(value)]
    assert any(band in probes[i] for i, band in enumerate(ph.bands(other)))
