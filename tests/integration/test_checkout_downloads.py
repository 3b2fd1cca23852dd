"""Licensed downloads: a 302 to a short-lived, read-only SAS for exactly the licensed original (real Azurite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from functions.checkout.catalogue import apply_catalogue_event
from functions.checkout.licenses import download_link
from shared.storage import ORIGINALS
from tests.fixtures.checkout import (
    approved,
    charge_object,
    message,
    removed,
    session_object,
    sign_webhook,
    stripe_event,
)
from tests.fixtures.photos import jpeg_bytes, photo

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _json(response):
    return json.loads(response.get_body())


async def _deliver(app, event):
    payload = json.dumps(event).encode()
    return await app.webhook(payload, sign_webhook(payload))


async def _bought(app, blob_store, buyer="bob", file_name="Café au lait.jpg"):
    """An original in `originals`, bought and paid by `buyer`: (license, image_id, original bytes, session)."""
    image_id = uuid.uuid4()
    original = jpeg_bytes(photo("coffee", megapixels=0.3))
    blob = f"carol/{image_id}.jpg"
    await blob_store.put(ORIGINALS, blob, original, content_type="image/jpeg")
    await apply_catalogue_event(app.runtime.db, message(approved(image_id, original_blob=blob, file_name=file_name)))
    token = app.token(buyer)
    await app.call("add_cart_item", "POST", "cart/items", token=token, json_body={"image_id": str(image_id)})
    order = _json(await app.call("checkout", "POST", "checkout", token=token))
    session = session_object(order["order_id"], order["total"]["amount_minor"])
    assert _json(await _deliver(app, stripe_event("checkout.session.completed", session)))["outcome"] == "paid"
    (license_,) = _json(await app.call("get_licenses", "GET", "licenses", token=token))["licenses"]
    return license_, image_id, original, session


async def _download(app, license_id, buyer="bob"):
    return await app.call(
        "download_license",
        "GET",
        f"licenses/{license_id}/download",
        token=app.token(buyer),
        route_params={"id": str(license_id)},
    )


def _sas(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_a_download_redirects_to_a_short_lived_read_only_link_to_the_original(checkout_app, blob_store):
    app = checkout_app
    license_, image_id, original, _ = await _bought(app, blob_store)

    response = await _download(app, license_["id"])

    assert response.status_code == 302
    url = response.headers["Location"]
    assert response.headers["Cache-Control"] == "no-store"
    assert urlsplit(url).path.endswith(f"/{ORIGINALS}/carol/{image_id}.jpg")
    sas = _sas(url)
    assert sas["sp"] == "r"
    expiry = datetime.strptime(sas["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expiry <= datetime.now(UTC) + timedelta(minutes=15)
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
        assert got.status_code == 200
        assert got.content == original
        disposition = got.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''Caf%C3%A9%20au%20lait.jpg" in disposition
        # Read-only: the same link cannot overwrite the original.
        put = await client.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
        assert put.status_code == 403
        # Exactly that original: the signature does not open a neighbour.
        other = url.replace(f"carol/{image_id}.jpg", "carol/other.jpg")
        assert (await client.get(other)).status_code == 403
    await _download(app, license_["id"])
    licenses = _json(await app.call("get_licenses", "GET", "licenses", token=app.token("bob")))["licenses"]
    assert licenses[0]["download_count"] == 2


async def test_another_buyers_license_is_not_found(checkout_app, blob_store):
    app = checkout_app
    license_, *_ = await _bought(app, blob_store, buyer="bob")
    response = await _download(app, license_["id"], buyer="eve")
    assert response.status_code == 404
    assert "Location" not in response.headers
    missing = await _download(app, uuid.uuid4(), buyer="bob")
    assert missing.status_code == 404
    count = await app.runtime.db.pool.fetchval("select download_count from checkout.licenses")
    assert count == 0


async def test_a_refunded_license_cannot_be_downloaded(checkout_app, blob_store):
    app = checkout_app
    license_, _, _, session = await _bought(app, blob_store)
    amount = session["amount_total"]
    await _deliver(app, stripe_event("charge.refunded", charge_object(session["payment_intent"], amount)))
    response = await _download(app, license_["id"])
    assert response.status_code == 410
    assert "Location" not in response.headers


async def test_a_license_of_an_image_taken_down_later_stays_downloadable(checkout_app, blob_store):
    app = checkout_app
    license_, image_id, original, _ = await _bought(app, blob_store)
    await apply_catalogue_event(app.runtime.db, message(removed(image_id)))
    response = await _download(app, license_["id"])
    assert response.status_code == 302
    async with httpx.AsyncClient() as client:
        assert (await client.get(response.headers["Location"])).content == original


async def test_an_expired_download_link_is_refused_by_storage(checkout_app, blob_store):
    app = checkout_app
    license_, _, original, _ = await _bought(app, blob_store)
    url = await download_link(
        app.runtime.db, blob_store, "bob", uuid.UUID(license_["id"]), lifetime=timedelta(seconds=3)
    )
    expiry = datetime.strptime(_sas(url)["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 200
        await asyncio.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 1.05)
        expired = await client.get(url)
    assert expired.status_code == 403
    assert expired.content != original
