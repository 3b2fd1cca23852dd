"""Images put on sale through the real pipeline (upload SAS -> ingestion -> processing -> moderation ->
search), as the API e2e tests do, so the browser journeys start from a catalogue people could buy from."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.devhost_process import token


@dataclass(frozen=True)
class Seeded:
    id: str
    title: str
    original: bytes


def auth(portal: dict, role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(portal['env'], '--role', role, '--sub', sub)}"}


def until(portal: dict, what: str, probe, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen in {timeout:.0f} s; devhost log:\n{portal['log'].read_text()[-4000:]}")


def upload(portal: dict, contributor: str, original: bytes, file_name: str, title: str, keywords: list[str]) -> str:
    who = auth(portal, "contributor", contributor)
    ticket = httpx.post(
        f"{portal['api']}/contributor/uploads",
        headers=who,
        json={
            "file_name": file_name,
            "size_bytes": len(original),
            "content_type": "image/jpeg",
            "sidecar": {"title": title, "keywords": keywords},
        },
        timeout=120,
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    put = httpx.put(body["upload_url"], content=original, headers=body["headers"], timeout=120)
    assert put.status_code == 201, put.text
    return body["image_id"]


def publish(portal: dict, contributor: str, image_ids: list[str]) -> None:
    """Waits for processing, approves what moderation queued for a person, then waits for search."""
    who = auth(portal, "contributor", contributor)
    admin = auth(portal, "admin", "seed-admin")
    for image_id in image_ids:

        def state(image_id=image_id):
            image = httpx.get(f"{portal['api']}/contributor/images/{image_id}", headers=who, timeout=60).json()
            assert image["state"] != "quarantined", image
            return image["state"] if image["state"] in {"approved", "flagged", "processed"} else None

        if until(portal, f"processing of {image_id}", state, timeout=300) != "approved":
            approved = httpx.post(f"{portal['api']}/admin/images/{image_id}/approve", headers=admin, timeout=120)
            assert approved.status_code == 200, approved.text
            until(portal, f"approval of {image_id}", lambda image_id=image_id: state(image_id) == "approved")

    def searchable():
        found = httpx.get(f"{portal['api']}/search", params={"per_page": 100}, timeout=60).json()["items"]
        return set(image_ids) <= {item["id"] for item in found}

    until(portal, "the images showing up in search", searchable)
