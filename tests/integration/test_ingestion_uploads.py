"""Upload tickets against real Azurite: the SAS URL writes exactly one blob, for a short time, and nothing else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from functions.ingestion.models import UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import (
    TicketAlreadyUsed,
    UploadRefused,
    forget_stale_tickets,
    incoming_blob_name,
    register_upload,
)
from shared.bus.events import Sidecar
from shared.storage import INCOMING
from tests.fixtures.photos import jpeg_bytes, photo

POLICY = IngestionPolicy()
PUT_HEADERS = {"x-ms-blob-type": "BlockBlob"}


def _request(size: int = 1000, **sidecar) -> UploadRequest:
    return UploadRequest(
        file_name="DSC_1234.jpg", size_bytes=size, content_type="image/jpeg", sidecar=Sidecar(**sidecar)
    )


async def test_a_ticket_registers_the_upload_and_its_url_puts_the_file_where_ingestion_expects_it(db, blob_store):
    data = jpeg_bytes(photo("coffee", megapixels=5))
    ticket = await register_upload(
        db, blob_store, POLICY, "carol", _request(len(data), title="Coffee", keywords=["cup"]), correlation_id="c-42"
    )

    assert ticket.method == "PUT" and ticket.headers == PUT_HEADERS
    assert timedelta(minutes=14) < ticket.expires_at - datetime.now(UTC) <= timedelta(minutes=15)
    row = await db.pool.fetchrow("select * from ingestion.images where image_id = $1", ticket.image_id)
    assert (row["state"], row["contributor_id"], row["file_name"]) == ("awaiting_upload", "carol", "DSC_1234.jpg")
    assert row["sidecar"]["title"] == "Coffee" and row["sidecar"]["keywords"] == ["cup"]
    assert row["correlation_id"] == "c-42"

    async with httpx.AsyncClient() as client:
        response = await client.put(ticket.upload_url, content=data, headers=PUT_HEADERS)
    assert response.status_code == 201, response.text
    assert await blob_store.get(INCOMING, incoming_blob_name("carol", ticket.image_id)) == data


async def test_the_upload_url_cannot_read_list_or_write_another_path(db, blob_store):
    ticket = await register_upload(db, blob_store, POLICY, "carol", _request())
    other_path = ticket.upload_url.replace(str(ticket.image_id), str(uuid.uuid4()))
    other_contributor = ticket.upload_url.replace("/carol/", "/dave/")
    container_list = (
        ticket.upload_url.split("/carol/")[0] + "?restype=container&comp=list&" + ticket.upload_url.split("?")[1]
    )
    async with httpx.AsyncClient() as client:
        put = await client.put(ticket.upload_url, content=b"abc", headers=PUT_HEADERS)
        assert put.status_code == 201
        assert (await client.put(other_path, content=b"abc", headers=PUT_HEADERS)).status_code == 403
        assert (await client.put(other_contributor, content=b"abc", headers=PUT_HEADERS)).status_code == 403
        assert (await client.get(ticket.upload_url)).status_code == 403  # write-only
        assert (await client.get(container_list)).status_code == 403
    assert [b.name async for b in blob_store.list(INCOMING)] == [incoming_blob_name("carol", ticket.image_id)]


@pytest.mark.slow
async def test_an_expired_upload_url_is_refused_by_storage(db, blob_store):
    ticket = await register_upload(
        db, blob_store, IngestionPolicy(upload_ttl=timedelta(seconds=1)), "carol", _request()
    )
    await asyncio.sleep(2.5)  # past the expiry (signed to the second)
    async with httpx.AsyncClient() as client:
        response = await client.put(ticket.upload_url, content=b"late", headers=PUT_HEADERS)
    assert response.status_code == 403
    assert not await blob_store.exists(INCOMING, incoming_blob_name("carol", ticket.image_id))


async def test_a_declared_size_over_the_limit_is_refused_and_nothing_is_registered(db, blob_store):
    with pytest.raises(UploadRefused) as refused:
        await register_upload(db, blob_store, IngestionPolicy(max_upload_bytes=1000), "carol", _request(1001))
    assert refused.value.field == "size_bytes"
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 0


async def test_registering_again_with_the_same_image_id_renews_the_ticket_until_the_file_arrives(db, blob_store):
    image_id = uuid.uuid4()
    first = await register_upload(db, blob_store, POLICY, "carol", _request(), image_id=image_id, source="migration")
    again = await register_upload(
        db, blob_store, POLICY, "carol", _request(2000), image_id=image_id, source="migration"
    )
    assert first.image_id == again.image_id == image_id
    row = await db.pool.fetchrow("select count(*) over () as n, declared_size from ingestion.images")
    assert (row["n"], row["declared_size"]) == (1, 2000)

    with pytest.raises(TicketAlreadyUsed):  # another contributor cannot take it over
        await register_upload(db, blob_store, POLICY, "mallory", _request(), image_id=image_id)
    await db.pool.execute("update ingestion.images set state = 'processing'")
    with pytest.raises(TicketAlreadyUsed):
        await register_upload(db, blob_store, POLICY, "carol", _request(), image_id=image_id)


async def test_tickets_whose_window_closed_without_a_file_are_forgotten(db, blob_store):
    stale = await register_upload(db, blob_store, POLICY, "carol", _request())
    fresh = await register_upload(db, blob_store, POLICY, "carol", _request())
    used = await register_upload(db, blob_store, POLICY, "carol", _request())
    await db.pool.execute(
        "update ingestion.images set upload_expires_at = now() - interval '2 hours' where image_id = any($1::uuid[])",
        [stale.image_id, used.image_id],
    )
    await db.pool.execute("update ingestion.images set state = 'processing' where image_id = $1", used.image_id)

    assert await forget_stale_tickets(db) == 1

    left = {r["image_id"] for r in await db.pool.fetch("select image_id from ingestion.images")}
    assert left == {fresh.image_id, used.image_id}


async def test_with_storage_unreachable_no_ticket_is_handed_out_and_nothing_is_registered(db):
    from azure.storage.blob.aio import BlobServiceClient

    from functions.ingestion.uploads import StorageUnavailable
    from shared.config import AZURITE_ACCOUNT, AZURITE_KEY
    from shared.storage.azure_blob import AzureBlobStore
    from tests.e2e.devhost_process import free_port

    nobody_listens = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT};"
    )
    async with AzureBlobStore(BlobServiceClient.from_connection_string(nobody_listens), ping_timeout=0.5) as down:
        with pytest.raises(StorageUnavailable):
            await register_upload(db, down, POLICY, "carol", _request())
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 0
