"""Upload end to end on devhost: ticket over HTTP, PUT to the SAS URL, blob trigger, bus, processing,
and the contributor watching the image become processed (or quarantined) through the API."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]

DONE_STATES = {"processed", "flagged", "approved"}


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("upload-e2e-var")
    env = devhost_environment(var_dir)
    log_path = var_dir.parent / f"devhost-upload-{env['DEVHOST_PORT']}.log"
    proc = start_devhost(env, log_path)
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "log": log_path}
    finally:
        stop_devhost(proc)


def _auth(devhost, role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(devhost['env'], '--role', role, '--sub', sub)}"}


def _upload(devhost, headers, data: bytes, file_name: str, **sidecar) -> str:
    ticket = httpx.post(
        f"{devhost['base']}/contributor/uploads",
        headers=headers,
        json={"file_name": file_name, "size_bytes": len(data), "content_type": "image/jpeg", "sidecar": sidecar},
        timeout=30,
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    assert body["method"] == "PUT"
    put = httpx.put(body["upload_url"], content=data, headers=body["headers"], timeout=60)
    assert put.status_code == 201, put.text
    return body["image_id"]


def _wait_for(devhost, headers, image_id: str, states: set[str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    image: dict = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{devhost['base']}/contributor/images/{image_id}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        image = response.json()
        if image["state"] in states:
            return image
        time.sleep(0.5)
    log_tail = devhost["log"].read_text()[-3000:]
    pytest.fail(f"image {image_id} still {image.get('state')!r} ({image.get('reason')}); devhost log:\n{log_tail}")


def test_a_contributor_uploads_a_photo_and_sees_it_processed_with_thumbnails_tags_and_safety_score(devhost):
    carol = _auth(devhost, "contributor", "carol-e2e")
    cat = photo("chelsea", megapixels=5)
    data = jpeg_bytes(cat)
    image_id = _upload(devhost, carol, data, "cat.jpg", title="A cat", keywords=["cat", "pet"])

    image = _wait_for(devhost, carol, image_id, DONE_STATES)

    listing = image["listing"]
    assert image["sidecar"]["title"] == "A cat"
    assert (image["width"], image["height"]) == cat.size
    assert listing["tags"] and 0 <= listing["safety_score"] <= 1
    for key in ("thumbnail_small_url", "thumbnail_url", "preview_url"):
        rendition = httpx.get(listing["renditions"][key], timeout=10)
        assert rendition.status_code == 200 and rendition.headers["content-type"].startswith("image/")

    # Own images only: another contributor sees a 404, not the image.
    dave = _auth(devhost, "contributor", "dave-e2e")
    assert httpx.get(f"{devhost['base']}/contributor/images/{image_id}", headers=dave, timeout=10).status_code == 404
    page = httpx.get(f"{devhost['base']}/contributor/images", headers=carol, timeout=10).json()
    assert image_id in [item["image_id"] for item in page["items"]]


def test_a_bad_file_is_quarantined_and_the_contributor_reads_why(devhost):
    carol = _auth(devhost, "contributor", "carol-e2e")
    image_id = _upload(devhost, carol, bad_images.html_page(), "holiday.jpg")

    image = _wait_for(devhost, carol, image_id, {"quarantined"}, timeout=30)

    assert image["reason_code"] == "unsupported-type"
    assert "HTML" in image["reason"]
    listed = httpx.get(
        f"{devhost['base']}/contributor/images", params={"state": "quarantined"}, headers=carol, timeout=10
    ).json()
    assert [item["image_id"] for item in listed["items"]] == [image_id]


def test_bad_ticket_requests_get_problem_details_and_register_nothing(devhost):
    carol = _auth(devhost, "contributor", "erin-e2e")
    too_big = httpx.post(
        f"{devhost['base']}/contributor/uploads",
        headers=carol,
        json={"file_name": "x.jpg", "size_bytes": 10**12, "content_type": "image/jpeg"},
        timeout=10,
    )
    assert too_big.status_code == 422
    assert too_big.headers["content-type"].startswith("application/problem+json")
    assert [e["name"] for e in too_big.json()["errors"]] == ["size_bytes"]
    gif = httpx.post(
        f"{devhost['base']}/contributor/uploads",
        headers=carol,
        json={"file_name": "x.gif", "size_bytes": 10, "content_type": "image/gif"},
        timeout=10,
    )
    assert gif.status_code == 422 and gif.json()["errors"][0]["name"] == "content_type"
    buyer = _auth(devhost, "buyer", "bob-e2e")
    ok_body = {"file_name": "x.jpg", "size_bytes": 10, "content_type": "image/jpeg"}
    assert httpx.post(f"{devhost['base']}/contributor/uploads", headers=buyer, json=ok_body).status_code == 403
    assert httpx.post(f"{devhost['base']}/contributor/uploads", json=ok_body).status_code == 401
    mine = httpx.get(f"{devhost['base']}/contributor/images", headers=carol, timeout=10).json()
    assert mine == {"items": [], "next_cursor": None}
    missing = httpx.get(f"{devhost['base']}/contributor/images/{uuid.uuid4()}", headers=carol, timeout=10)
    assert missing.status_code == 404
