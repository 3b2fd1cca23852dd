"""Upload abuse limits on real Postgres and Azurite: daily quotas per contributor (files and bytes, durable),
create-only upload URLs held to the declared size, and a per-IP budget for anonymous search."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from functions.ingestion.ingest import ingest_blob
from functions.ingestion.models import UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.quotas import QuotaExceeded, UploadQuota, seconds_to_next_day
from functions.ingestion.uploads import incoming_blob_name, register_upload
from shared.bus.events import Sidecar
from shared.storage import INCOMING, QUARANTINE
from tests.fixtures.photos import jpeg_bytes, photo

PUT_HEADERS = {"x-ms-blob-type": "BlockBlob"}


def _request(size: int = 1000) -> UploadRequest:
    return UploadRequest(file_name="DSC_1.jpg", size_bytes=size, content_type="image/jpeg", sidecar=Sidecar())


def _policy(files: int = 3, size: int = 10_000) -> IngestionPolicy:
    return IngestionPolicy(quota=UploadQuota(files_per_day=files, bytes_per_day=size))


async def _tickets(db) -> int:
    return await db.pool.fetchval("select count(*) from ingestion.images")


# --- daily quotas -------------------------------------------------------------------------------


async def test_the_file_quota_refuses_the_next_ticket_and_registers_nothing(db, blob_store):
    policy = _policy(files=2)
    for _ in range(2):
        await register_upload(db, blob_store, policy, "carol", _request())
    with pytest.raises(QuotaExceeded) as refused:
        await register_upload(db, blob_store, policy, "carol", _request())
    assert (refused.value.what, refused.value.used, refused.value.limit) == ("files", 2, 2)
    assert 0 < refused.value.retry_after <= 24 * 3600
    assert await _tickets(db) == 2
    await register_upload(db, blob_store, policy, "dave", _request())  # each contributor has their own budget


async def test_the_byte_quota_counts_declared_bytes(db, blob_store):
    policy = _policy(files=100, size=2500)
    await register_upload(db, blob_store, policy, "carol", _request(2000))
    with pytest.raises(QuotaExceeded) as refused:
        await register_upload(db, blob_store, policy, "carol", _request(501))
    assert refused.value.what == "bytes" and refused.value.used == 2000
    await register_upload(db, blob_store, policy, "carol", _request(500))  # exactly the rest still fits
    with pytest.raises(QuotaExceeded):  # one file bigger than a whole day's budget
        await register_upload(db, blob_store, policy, "erin", _request(2501))


async def test_concurrent_requests_cannot_overrun_the_quota(db, blob_store):
    policy = _policy(files=5, size=10**9)
    results = await asyncio.gather(
        *(register_upload(db, blob_store, policy, "carol", _request()) for _ in range(12)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    assert all(isinstance(r, QuotaExceeded) for r in results if isinstance(r, BaseException))
    assert await _tickets(db) == 5


async def test_the_count_is_durable_and_per_utc_day(db, blob_store):
    policy = _policy(files=1)
    await register_upload(db, blob_store, policy, "carol", _request())
    day = await db.pool.fetchval("select day from ingestion.upload_quota_usage where contributor_id = 'carol'")
    assert day == datetime.now(UTC).date()
    # Yesterday's usage (as after midnight) leaves today's budget whole.
    await db.pool.execute("update ingestion.upload_quota_usage set day = day - 1")
    await register_upload(db, blob_store, policy, "carol", _request())


async def test_renewing_a_ticket_and_migrating_a_library_do_not_spend_the_quota(db, blob_store):
    policy = _policy(files=1)
    image_id = uuid.uuid4()
    await register_upload(db, blob_store, policy, "carol", _request(), image_id=image_id)
    await register_upload(db, blob_store, policy, "carol", _request(), image_id=image_id)  # renewal
    for _ in range(3):
        await register_upload(db, blob_store, policy, "carol", _request(), source="migration")
    assert await _tickets(db) == 4


def test_retry_after_points_at_the_next_utc_midnight():
    assert seconds_to_next_day(datetime(2026, 12, 6, 23, 59, 30, tzinfo=UTC)) == 30
    assert seconds_to_next_day(datetime(2026, 12, 6, 0, 0, 0, tzinfo=UTC)) == 24 * 3600


@pytest.fixture
def api_settings_overrides() -> dict[str, object]:
    return {"UPLOAD_QUOTA_FILES_PER_DAY": 1, "SEARCH_ANONYMOUS_PER_IP_PER_MINUTE": 3}


async def test_the_upload_route_answers_429_with_retry_after_when_the_quota_is_used(api_app):
    token = api_app.token("carol", "contributor")
    body = {"file_name": "a.jpg", "size_bytes": 1000, "content_type": "image/jpeg"}
    assert (await api_app.request("POST", "contributor/uploads", token=token, json_body=body)).status == 201
    response = await api_app.request("POST", "contributor/uploads", token=token, json_body=body)
    assert response.status == 429 and response.is_problem
    problem = response.json()
    assert problem["type"].endswith("/upload-quota-exceeded") and problem["quota"] == "files"
    assert int(response.headers["Retry-After"]) == problem["retry_after"] > 0


async def test_anonymous_search_has_its_own_per_ip_budget(api_app):
    for _ in range(3):
        assert (await api_app.request("GET", "search", query={"q": "coffee"})).status == 200
    refused = await api_app.request("GET", "search", query={"q": "coffee"})
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    # One budget for every kind of search from that address...
    assert (await api_app.request("GET", f"images/{uuid.uuid4()}/similar")).status == 429
    # ...not for other addresses, and not for signed-in buyers (limited per account instead).
    other = await api_app.request("GET", "search", query={"q": "coffee"}, headers={"x-client-ip": "203.0.113.9"})
    assert other.status == 200
    buyer = api_app.token("bob", "buyer")
    assert (await api_app.request("GET", "search", query={"q": "coffee"}, token=buyer)).status == 200


# --- the upload URL ------------------------------------------------------------------------------


async def test_the_upload_url_names_one_blob_creates_it_once_and_expires_soon(db, blob_store):
    ticket = await register_upload(db, blob_store, IngestionPolicy(), "carol", _request(3))
    sas = parse_qs(urlsplit(ticket.upload_url).query)
    assert sas["sp"] == ["c"] and sas["sr"] == ["b"]  # create only, one blob
    expiry = datetime.fromisoformat(sas["se"][0].replace("Z", "+00:00"))
    assert (expiry - datetime.now(UTC)).total_seconds() <= 15 * 60
    async with httpx.AsyncClient() as client:
        assert (await client.put(ticket.upload_url, content=b"abc", headers=PUT_HEADERS)).status_code == 201
        again = await client.put(ticket.upload_url, content=b"xyz", headers=PUT_HEADERS)
    assert again.status_code in (403, 409)  # the file ingestion will read cannot be swapped
    assert await blob_store.get(INCOMING, incoming_blob_name("carol", ticket.image_id)) == b"abc"


async def test_a_file_of_another_size_than_declared_is_quarantined_with_a_reason(db, blob_store):
    data = jpeg_bytes(photo("coffee", megapixels=5))
    ticket = await register_upload(db, blob_store, IngestionPolicy(), "carol", _request(len(data) - 1000))
    name = incoming_blob_name("carol", ticket.image_id)
    await blob_store.put(INCOMING, name, data)

    result = await ingest_blob(db, blob_store, IngestionPolicy(), name)

    assert result.outcome == "quarantined" and result.reason_code == "size-mismatch"
    row = await db.pool.fetchrow("select * from ingestion.images where image_id = $1", ticket.image_id)
    assert row["state"] == "quarantined" and "declared" in row["reason"]
    assert await blob_store.exists(QUARANTINE, name) and not await blob_store.exists(INCOMING, name)
