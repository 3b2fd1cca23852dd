"""Camera, lens and capture date from a photo's EXIF, read from the header without decoding pixels.

Reading is forgiving: EXIF is written by thousands of devices and editors, often badly,
and a broken tag must never fail the processing of an otherwise good photo. Whatever
cannot be read is simply absent.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from PIL import Image
from PIL.ExifTags import IFD, Base

log = logging.getLogger(__name__)

_MAX_TEXT = 100  # longer "camera names" are junk (maker notes spilling into ASCII tags)


@dataclass(frozen=True)
class ExifSummary:
    camera: str | None = None  # "Canon EOS R5": make and model, the make not repeated
    lens: str | None = None
    captured_at: datetime | None = None  # aware when the file records its UTC offset, else local time
    orientation: int = 1
    has_gps: bool = False


def read_exif(data: bytes) -> ExifSummary:
    try:
        with Image.open(io.BytesIO(data)) as img:  # lazy: parses the header, not the pixels
            exif = img.getexif()
            exif_ifd = exif.get_ifd(IFD.Exif) if IFD.Exif in exif else {}
            has_gps = IFD.GPSInfo in exif
    except Exception as exc:  # any parse failure means "no usable EXIF", not a failed photo
        log.info("exif unreadable: %s", exc)
        return ExifSummary()
    make = _text(exif.get(Base.Make))
    model = _text(exif.get(Base.Model))
    orientation = exif.get(Base.Orientation, 1)
    return ExifSummary(
        camera=_camera(make, model),
        lens=_lens(_text(exif_ifd.get(Base.LensMake)), _text(exif_ifd.get(Base.LensModel))),
        captured_at=_timestamp(
            exif_ifd.get(Base.DateTimeOriginal) or exif_ifd.get(Base.DateTimeDigitized) or exif.get(Base.DateTime),
            exif_ifd.get(Base.OffsetTimeOriginal) or exif_ifd.get(Base.OffsetTime),
        ),
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
        has_gps=has_gps,
    )


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = " ".join(value.replace("\x00", " ").split())
    return value[:_MAX_TEXT] or None


def _camera(make: str | None, model: str | None) -> str | None:
    if make and model:
        # Most makers repeat the make in the model ("Canon" + "Canon EOS R5"); some do not ("NIKON" + "D850").
        first_word = make.split()[0].lower()
        return model if model.lower().startswith(first_word) else f"{make} {model}"
    return model or make


def _lens(make: str | None, model: str | None) -> str | None:
    return _camera(make, model) if model else None


def _timestamp(value: object, offset: object) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00", blanks, other junk
        return None
    offset_text = _text(offset)
    if offset_text and len(offset_text) == 6 and offset_text[0] in "+-" and offset_text[3] == ":":
        try:
            hours, minutes = int(offset_text[1:3]), int(offset_text[4:6])
        except ValueError:
            return moment
        sign = -1 if offset_text[0] == "-" else 1
        return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return moment
