"""Ingestion's edges without a database: upload requests, paging cursors, blob names, migration sidecars."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import get_args

import pytest
from pydantic import ValidationError

from functions.ingestion.migration import SidecarError, SourceFile, load_sidecar, sidecar_for
from functions.ingestion.models import ImagesQuery, UploadRequest, decode_cursor, encode_cursor
from functions.ingestion.uploads import incoming_blob_name, parse_incoming_blob_name
from shared.imaging.inspect import ACCEPTED_CONTENT_TYPES


def _request(**changes) -> dict:
    return {"file_name": "IMG_1.jpg", "size_bytes": 123, "content_type": "image/jpeg", **changes}


def _error_fields(**changes) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        UploadRequest.model_validate(_request(**changes))
    return [".".join(map(str, e["loc"])) for e in refused.value.errors()]


def test_a_plain_upload_request_is_accepted_with_an_empty_sidecar():
    request = UploadRequest.model_validate(_request())
    assert request.sidecar.usage == "commercial" and request.sidecar.keywords == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"file_name": "../etc/passwd"}, "file_name"),
        ({"file_name": "a\\b.jpg"}, "file_name"),
        ({"file_name": "bell\x07.jpg"}, "file_name"),
        ({"file_name": ""}, "file_name"),
        ({"size_bytes": 0}, "size_bytes"),
        ({"content_type": "image/gif"}, "content_type"),
        ({"content_type": "text/html"}, "content_type"),
        ({"sidecar": {"title": "x" * 201}}, "sidecar.title"),
        ({"sidecar": {"keywords": ["k"] * 51}}, "sidecar.keywords"),
        ({"sidecar": {"usage": "personal"}}, "sidecar.usage"),
        ({"sidecar": {"price": 5}}, "sidecar.price"),
        ({"owner": "someone-else"}, "owner"),
    ],
)
def test_bad_upload_requests_name_the_field_at_fault(changes, field):
    assert field in _error_fields(**changes)


def test_the_declarable_types_are_exactly_those_ingestion_accepts():
    assert set(get_args(UploadRequest.model_fields["content_type"].annotation)) == ACCEPTED_CONTENT_TYPES


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    when, image_id = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(when, image_id)) == (when, image_id)
    assert ImagesQuery(cursor=encode_cursor(when, image_id)).cursor
    with pytest.raises(ValidationError):
        ImagesQuery(cursor="not-a-cursor")
    with pytest.raises(ValidationError):
        ImagesQuery(per_page=101)


def test_incoming_blob_names_carry_the_contributor_and_the_image_id():
    image_id = uuid.uuid4()
    name = incoming_blob_name("carol", image_id)
    assert name == f"carol/{image_id}"
    assert parse_incoming_blob_name(name) == ("carol", image_id)
    assert parse_incoming_blob_name(f"org/team/{image_id}") == ("org/team", image_id)
    for stray in (str(image_id), "carol/photo.jpg", f"/{image_id}", f"carol/{str(image_id).upper()}", ""):
        assert parse_incoming_blob_name(stray) is None


def _file(rel_path: str) -> SourceFile:
    return SourceFile(rel_path, f"/src/{rel_path}", 1, 1)


def test_a_csv_sidecar_gives_titles_and_keywords_by_path_or_file_name(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text(
        "path,title,keywords,usage\n"
        "trips/paris/eiffel.jpg,Eiffel tower,tower; paris ; night,editorial\n"
        'beach.jpg,Beach,"sand,sea",\n'
    )
    table = load_sidecar(path)
    eiffel = sidecar_for(table, _file("trips/paris/eiffel.jpg"))
    assert (eiffel.title, eiffel.keywords, eiffel.usage) == ("Eiffel tower", ["tower", "paris", "night"], "editorial")
    assert sidecar_for(table, _file("2019/beach.jpg")).keywords == ["sand", "sea"]  # by bare file name
    assert sidecar_for(table, _file("other.jpg")).title == ""


def test_a_json_sidecar_may_be_an_object_or_a_list(tmp_path):
    as_object = tmp_path / "a.json"
    as_object.write_text(json.dumps({"./x/y.jpg": {"title": "Y", "keywords": ["k"]}}))
    as_list = tmp_path / "b.json"
    as_list.write_text(json.dumps([{"path": "x/y.jpg", "title": "Y"}]))
    assert sidecar_for(load_sidecar(as_object), _file("x/y.jpg")).keywords == ["k"]
    assert sidecar_for(load_sidecar(as_list), _file("x/y.jpg")).title == "Y"


def test_an_unreadable_sidecar_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SidecarError):
        load_sidecar(broken)
    no_path = tmp_path / "nopath.json"
    no_path.write_text(json.dumps([{"title": "orphan"}]))
    with pytest.raises(SidecarError, match="names no path"):
        load_sidecar(no_path)
