"""Camera, lens and capture date from EXIF: read when present, absent (never an error) when not."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from PIL import Image
from PIL.ExifTags import IFD, Base

from shared.imaging.exif import ExifSummary, read_exif
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo, png_bytes


def with_exif(**tags: object) -> bytes:
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(IFD.Exif)
    for name, value in tags.items():
        tag = Base[name]
        (exif_ifd if tag >= 0x8000 else exif)[tag] = value
    return jpeg_bytes(photo("coffee"), exif=exif)


def test_camera_capture_date_and_gps_presence_are_read_from_a_camera_jpeg():
    summary = read_exif(bad_images.jpeg_with_gps())
    assert summary.camera == "Canon EOS R5"  # the make is not repeated
    assert summary.captured_at == datetime(2024, 5, 17, 8, 30)
    assert summary.has_gps


def test_make_is_prefixed_when_the_model_does_not_repeat_it_and_the_lens_is_read():
    summary = read_exif(with_exif(Make="NIKON CORPORATION", Model="D850", LensModel="24-70mm f/2.8 "))
    assert summary.camera == "NIKON CORPORATION D850"
    assert summary.lens == "24-70mm f/2.8"


def test_the_recorded_utc_offset_makes_the_capture_time_aware():
    summary = read_exif(with_exif(DateTimeOriginal="2023:12:31 23:59:58", OffsetTimeOriginal="+05:30"))
    assert summary.captured_at == datetime(2023, 12, 31, 23, 59, 58, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def test_junk_dates_and_text_are_absent_rather_than_errors():
    summary = read_exif(with_exif(DateTimeOriginal="0000:00:00 00:00:00", Model="\x00\x00  "))
    assert summary.captured_at is None
    assert summary.camera is None


def test_a_huge_exif_block_is_read_without_trouble():
    summary = read_exif(bad_images.jpeg_with_huge_exif())
    assert summary.camera == "HugeExifCam"
    assert not summary.has_gps


def test_orientation_is_reported():
    assert read_exif(bad_images.jpeg_with_orientation(8)).orientation == 8


def test_files_without_exif_or_not_images_give_an_empty_summary():
    assert read_exif(png_bytes(photo("coffee"))) == ExifSummary()
    assert read_exif(b"not an image") == ExifSummary()
