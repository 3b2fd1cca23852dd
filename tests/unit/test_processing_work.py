"""The pixel work of processing one photo, and the settings that shape it."""

from __future__ import annotations

import pytest

from functions.processing.handlers import orientation_of
from functions.processing.work import ProcessingOptions, render_and_describe
from shared.config import load_settings
from shared.imaging.decode import UndecodableImage
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo


def test_one_decode_yields_every_rendition_the_hashes_and_the_model_input():
    work = render_and_describe(bad_images.jpeg_with_gps(), ProcessingOptions())
    assert [(r.spec.name, max(r.width, r.height)) for r in work.renditions] == [
        ("small", 260),
        ("medium", 450),
        ("preview", 1000),
    ]
    assert work.analysis_input.size == (450, 300)
    assert (work.decoded.width, work.decoded.height) == photo("coffee", megapixels=5).size
    assert work.exif.camera == "Canon EOS R5"
    assert work.colors and work.blurhash and 0 < work.phash < 2**64
    assert set(work.stage_ms) == {"decode", "render", "describe"}


def test_sizes_and_quality_come_from_the_settings():
    settings = load_settings(
        PROCESSING_PREVIEW_PX=800, PROCESSING_THUMBNAIL_PX=400, PROCESSING_THUMBNAIL_SMALL_PX=200,
        PROCESSING_JPEG_QUALITY=70, PROCESSING_WATERMARK_TEXT="sample",
    )  # fmt: skip
    options = ProcessingOptions.from_settings(settings)
    assert options == ProcessingOptions(800, 400, 200, 70, "sample")
    work = render_and_describe(jpeg_bytes(photo("chelsea", megapixels=4)), options)
    assert [max(r.width, r.height) for r in work.renditions] == [200, 400, 800]


def test_a_file_that_is_not_an_image_is_undecodable():
    with pytest.raises(UndecodableImage):
        render_and_describe(bad_images.svg_drawing(), ProcessingOptions())


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((6000, 4000), "landscape"), ((4000, 6000), "portrait"), ((4000, 4000), "square"), ((4000, 4050), "square")],
)
def test_orientation_counts_nearly_square_as_square(size, orientation):
    assert orientation_of(*size) == orientation
