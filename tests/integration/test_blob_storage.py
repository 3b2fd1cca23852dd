"""Blob storage, specified against real Azurite (and, for user-delegation SAS, at the SDK's HTTP boundary)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import AsyncHttpResponse, AsyncHttpTransport
from azure.core.utils import CaseInsensitiveDict

from shared.config import AZURITE_ACCOUNT, AZURITE_KEY
from shared.storage import (
    INCOMING,
    ORIGINALS,
    QUARANTINE,
    THUMBNAILS,
    WATERMARKED,
    BlobAlreadyExists,
    BlobNotFound,
    BlobStore,
)
from shared.storage.azure_blob import AzureBlobStore
from shared.storage.azurite import AzuriteNotInstalled, AzuriteServer

MiB = 1024 * 1024


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _xml_field(xml: str, tag: str) -> str:
    match = re.search(f"<{tag}>([^<]*)</{tag}>", xml)
    assert match, f"no <{tag}> in {xml!r}"
    return match.group(1)


def _sas_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- blobs -------------------------------------------------------------------------------------


async def test_the_adapter_satisfies_the_port(blob_store: AzureBlobStore) -> None:
    assert isinstance(blob_store, BlobStore)
    assert await blob_store.ping() is True


async def test_put_then_get_round_trips_bytes_content_type_and_metadata(blob_store: AzureBlobStore) -> None:
    data = os.urandom(10_000)
    info = await blob_store.put(
        ORIGINALS, "c1/img 1.jpg", data, content_type="image/jpeg", metadata={"owner": "c1", "sha256": "ab12"}
    )
    assert (info.name, info.size, info.content_type) == ("c1/img 1.jpg", 10_000, "image/jpeg")

    assert await blob_store.get(ORIGINALS, "c1/img 1.jpg") == data
    props = await blob_store.properties(ORIGINALS, "c1/img 1.jpg")
    assert props is not None
    assert (props.size, props.content_type, props.etag) == (10_000, "image/jpeg", info.etag)
    assert dict(props.metadata) == {"owner": "c1", "sha256": "ab12"}
    assert props.last_modified.tzinfo is not None
    assert await blob_store.exists(ORIGINALS, "c1/img 1.jpg")
    assert await blob_store.get_range(ORIGINALS, "c1/img 1.jpg", 100, 50) == data[100:150]
    assert await blob_store.get_range(ORIGINALS, "c1/img 1.jpg", 9_990) == data[9_990:]
    assert await blob_store.get_range(ORIGINALS, "c1/img 1.jpg", 10_000) == b""


async def test_overwrite_false_refuses_an_existing_blob_and_keeps_it(blob_store: AzureBlobStore) -> None:
    await blob_store.put(INCOMING, "a.bin", b"first")
    with pytest.raises(BlobAlreadyExists):
        await blob_store.put(INCOMING, "a.bin", b"second", overwrite=False)
    assert await blob_store.get(INCOMING, "a.bin") == b"first"
    await blob_store.put(INCOMING, "a.bin", b"third")  # overwrite=True is the default
    assert await blob_store.get(INCOMING, "a.bin") == b"third"


async def test_large_streamed_upload_goes_in_blocks_and_streams_back_in_chunks(blob_store: AzureBlobStore) -> None:
    data = os.urandom(12 * MiB + 12_345)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 700_001):  # odd sizes: the adapter re-blocks them
            yield data[i : i + 700_001]
            await asyncio.sleep(0)

    info = await blob_store.put(ORIGINALS, "big.tif", chunks(), content_type="image/tiff")
    assert info.size == len(data)

    blocks = await blob_store.service_client.get_blob_client(ORIGINALS, "big.tif").get_block_list("committed")
    committed = blocks[0]
    assert len(committed) >= 3
    assert sum(b.size for b in committed) == len(data)

    received = [chunk async for chunk in blob_store.stream(ORIGINALS, "big.tif")]
    assert len(received) >= 3 and max(len(c) for c in received) <= 4 * MiB
    assert b"".join(received) == data
    assert await blob_store.get_range(ORIGINALS, "big.tif", 5 * MiB, 1_000) == data[5 * MiB : 5 * MiB + 1_000]
    props = await blob_store.properties(ORIGINALS, "big.tif")
    assert props is not None and (props.size, props.content_type) == (len(data), "image/tiff")


async def test_a_binary_file_uploads_from_its_current_position(blob_store: AzureBlobStore) -> None:
    data = os.urandom(9 * MiB)  # over the single-put size: staged in blocks from the file
    stream = io.BytesIO(data)
    stream.seek(10)
    info = await blob_store.put(INCOMING, "from-file.bin", stream)
    assert info.size == len(data) - 10
    assert await blob_store.get(INCOMING, "from-file.bin") == data[10:]


async def test_server_side_copy_then_delete_moves_a_blob_with_its_properties(blob_store: AzureBlobStore) -> None:
    data = os.urandom(50_000)
    await blob_store.put(INCOMING, "u/42.jpg", data, content_type="image/jpeg", metadata={"uploader": "u"})

    copied = await blob_store.copy(INCOMING, "u/42.jpg", ORIGINALS, "img/42.jpg")
    assert await blob_store.delete(INCOMING, "u/42.jpg") is True

    assert (copied.name, copied.size, copied.content_type) == ("img/42.jpg", 50_000, "image/jpeg")
    assert await blob_store.get(ORIGINALS, "img/42.jpg") == data
    props = await blob_store.properties(ORIGINALS, "img/42.jpg")
    assert props is not None and dict(props.metadata) == {"uploader": "u"}
    assert not await blob_store.exists(INCOMING, "u/42.jpg")
    assert await blob_store.delete(INCOMING, "u/42.jpg") is False  # idempotent


async def test_a_missing_blob_is_blob_not_found(blob_store: AzureBlobStore) -> None:
    with pytest.raises(BlobNotFound) as caught:
        await blob_store.get(ORIGINALS, "nope.jpg")
    assert (caught.value.container, caught.value.name) == (ORIGINALS, "nope.jpg")
    with pytest.raises(BlobNotFound):
        await blob_store.get_range(ORIGINALS, "nope.jpg", 0, 10)
    with pytest.raises(BlobNotFound):
        [chunk async for chunk in blob_store.stream(ORIGINALS, "nope.jpg")]
    with pytest.raises(BlobNotFound) as caught:
        await blob_store.copy(INCOMING, "nope.jpg", ORIGINALS, "dst.jpg")
    assert caught.value.container == INCOMING
    with pytest.raises(BlobNotFound):
        await blob_store.get("no-such-container", "x")
    assert await blob_store.properties(ORIGINALS, "nope.jpg") is None
    assert await blob_store.exists(ORIGINALS, "nope.jpg") is False
    assert await blob_store.delete(ORIGINALS, "nope.jpg") is False


async def test_list_returns_blobs_under_a_prefix_in_name_order(blob_store: AzureBlobStore) -> None:
    for name in ["c2/b.jpg", "c1/b.jpg", "c1/a.jpg", "c10/a.jpg"]:
        await blob_store.put(THUMBNAILS, name, name.encode(), content_type="image/jpeg", metadata={"n": "1"})

    listed = [info async for info in blob_store.list(THUMBNAILS, "c1/")]
    assert [i.name for i in listed] == ["c1/a.jpg", "c1/b.jpg"]
    assert all(i.size == 8 and i.content_type == "image/jpeg" and dict(i.metadata) == {"n": "1"} for i in listed)
    assert len([i async for i in blob_store.list(THUMBNAILS)]) == 4
    assert [i async for i in blob_store.list(WATERMARKED, "c1/")] == []


# --- containers and access ---------------------------------------------------------------------


async def test_containers_have_the_right_anonymous_access(blob_store: AzureBlobStore) -> None:
    for container in (INCOMING, ORIGINALS, THUMBNAILS, WATERMARKED, QUARANTINE):
        await blob_store.put(container, "p.jpg", b"pixels-" + container.encode(), content_type="image/jpeg")

    async with httpx.AsyncClient() as http:
        for container in (THUMBNAILS, WATERMARKED):
            response = await http.get(blob_store.public_url(container, "p.jpg"))
            assert response.status_code == 200, container
            assert response.content == b"pixels-" + container.encode()
            assert response.headers["content-type"] == "image/jpeg"
        for container in (INCOMING, ORIGINALS, QUARANTINE):
            url = blob_store.public_url(THUMBNAILS, "p.jpg").replace(f"/{THUMBNAILS}/", f"/{container}/")
            response = await http.get(url)
            assert response.status_code in (403, 404), container
            assert b"pixels" not in response.content

    with pytest.raises(ValueError, match="private"):
        blob_store.public_url(ORIGINALS, "p.jpg")


async def test_ensure_containers_is_idempotent_and_repairs_public_access(blob_store: AzureBlobStore) -> None:
    originals = blob_store.service_client.get_container_client(ORIGINALS)
    thumbnails = blob_store.service_client.get_container_client(THUMBNAILS)
    await originals.set_container_access_policy(signed_identifiers={}, public_access="blob")
    await thumbnails.set_container_access_policy(signed_identifiers={}, public_access=None)

    await blob_store.ensure_containers()
    await blob_store.ensure_containers()

    assert (await originals.get_container_access_policy())["public_access"] is None
    assert (await thumbnails.get_container_access_policy())["public_access"] == "blob"


# --- SAS (account key, Azurite) ----------------------------------------------------------------


async def test_a_read_sas_downloads_exact_bytes_with_the_content_disposition_asked(
    blob_store: AzureBlobStore,
) -> None:
    data = os.urandom(200_000)
    await blob_store.put(ORIGINALS, "lic/9.jpg", data, content_type="image/jpeg")
    before = datetime.now(UTC)
    url = await blob_store.sas_url(
        ORIGINALS,
        "lic/9.jpg",
        permissions="r",
        expires_in=timedelta(minutes=10),
        content_disposition='attachment; filename="sunset-9.jpg"',
    )
    after = datetime.now(UTC)

    query = _query(url)
    assert query["sp"] == "r" and query["sr"] == "b"
    assert _sas_time(query["st"]) <= before - timedelta(minutes=1)  # clock skew allowance
    assert _sas_time(query["se"]) <= after + timedelta(minutes=10)
    assert _sas_time(query["se"]) >= before + timedelta(minutes=10) - timedelta(seconds=1)

    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-disposition"] == 'attachment; filename="sunset-9.jpg"'


async def test_a_read_sas_works_for_names_that_need_quoting(blob_store: AzureBlobStore) -> None:
    name = "c1/holiday snaps/été 100% #1.jpg"
    await blob_store.put(ORIGINALS, name, b"bytes", content_type="image/jpeg")
    url = await blob_store.sas_url(ORIGINALS, name)
    assert url.split("?")[0] == blob_store.service_client.get_blob_client(ORIGINALS, name).url.split("?")[0]
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == b"bytes"


async def test_a_write_only_sas_lets_a_client_upload_but_not_read(blob_store: AzureBlobStore) -> None:
    url = await blob_store.sas_url(INCOMING, "c1/upload-1.jpg", permissions="cw", expires_in=timedelta(minutes=5))
    assert _query(url)["sp"] == "cw"

    async with httpx.AsyncClient() as http:
        put = await http.put(
            url, content=b"jpeg-bytes", headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "image/jpeg"}
        )
        assert put.status_code == 201, put.text
        read = await http.get(url)
        assert read.status_code == 403

    assert await blob_store.get(INCOMING, "c1/upload-1.jpg") == b"jpeg-bytes"
    props = await blob_store.properties(INCOMING, "c1/upload-1.jpg")
    assert props is not None and props.content_type == "image/jpeg"


async def test_a_page_from_an_allowed_origin_may_put_to_an_upload_sas_and_others_may_not(
    blob_store: AzureBlobStore,
) -> None:
    portal = "http://localhost:7071"
    await blob_store.allow_browser_uploads([portal, portal])
    url = await blob_store.sas_url(INCOMING, "c1/from-browser.jpg", permissions="cw", expires_in=timedelta(minutes=5))
    preflight_headers = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-ms-blob-type,content-type",
    }
    async with httpx.AsyncClient() as http:
        # What a browser asks before a cross-origin PUT with a custom header.
        allowed = await http.options(url, headers={"Origin": portal, **preflight_headers})
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == portal
        assert "PUT" in allowed.headers["access-control-allow-methods"]
        assert "x-ms-blob-type" in allowed.headers["access-control-allow-headers"].lower()
        put = await http.put(
            url,
            content=b"jpeg-bytes",
            headers={"Origin": portal, "x-ms-blob-type": "BlockBlob", "Content-Type": "image/jpeg"},
        )
        assert put.status_code == 201 and put.headers["access-control-allow-origin"] == portal

        stranger = await http.options(url, headers={"Origin": "http://evil.example", **preflight_headers})
        assert stranger.status_code == 403
        assert "access-control-allow-origin" not in stranger.headers
    assert await blob_store.get(INCOMING, "c1/from-browser.jpg") == b"jpeg-bytes"


async def test_an_expired_sas_is_refused_by_storage(blob_store: AzureBlobStore) -> None:
    await blob_store.put(ORIGINALS, "old.jpg", b"x")
    # 3 s, not 1: expiry is truncated to whole seconds, and a loaded CI machine must still make the first GET in time.
    url = await blob_store.sas_url(ORIGINALS, "old.jpg", expires_in=timedelta(seconds=3))
    expiry = _sas_time(_query(url)["se"])
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200  # valid until se
        await asyncio.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 1.05)
        response = await http.get(url)
    assert response.status_code == 403
    assert response.content != b"x"


async def test_sas_arguments_are_validated(blob_store: AzureBlobStore) -> None:
    with pytest.raises(ValueError, match="permissions"):
        await blob_store.sas_url(ORIGINALS, "a.jpg", permissions="rz")
    with pytest.raises(ValueError, match="permissions"):
        await blob_store.sas_url(ORIGINALS, "a.jpg", permissions="")
    with pytest.raises(ValueError, match="positive"):
        await blob_store.sas_url(ORIGINALS, "a.jpg", expires_in=timedelta(0))
    # permissions are put in Azure's canonical order
    assert _query(await blob_store.sas_url(INCOMING, "a.jpg", permissions="wc"))["sp"] == "cw"


async def test_ping_is_false_when_storage_does_not_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    async with AzureBlobStore.from_connection_string(dead, retry_total=0) as store:
        assert await store.ping() is False


# --- user-delegation SAS at the SDK's HTTP boundary --------------------------------------------

# A Get User Delegation Key response as Blob Storage returns it (service version 2025-11-05);
# start and expiry are echoed from the request, as the service does.
RECORDED_USER_DELEGATION_KEY = (
    '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
    "<SignedOid>6f1c2a7e-0000-4000-8000-00000000c0de</SignedOid>"
    "<SignedTid>72f988bf-0000-4000-8000-0000000000aa</SignedTid>"
    "<SignedStart>{start}</SignedStart><SignedExpiry>{expiry}</SignedExpiry>"
    "<SignedService>b</SignedService><SignedVersion>2025-11-05</SignedVersion>"
    "<Value>3CzJvGfM0RkD3fVOAwS4L2v2j7y4sN1c6m2YbqJrLZU=</Value>"
    "</UserDelegationKey>"
)


class _ReplayedResponse(AsyncHttpResponse):
    def __init__(self, request: object, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(request, None)  # type: ignore[arg-type]
        self.status_code = status
        self.reason = "OK" if status < 400 else "Error"
        self.headers = CaseInsensitiveDict(headers)
        self.content_type = headers.get("Content-Type")
        self._body = body

    def body(self) -> bytes:
        return self._body

    async def load_body(self) -> None:
        return None


class RecordingTransport(AsyncHttpTransport):
    """Records every request; answers Get User Delegation Key with the recorded response, 404 otherwise."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], str]] = []

    async def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        content = getattr(request, "content", None) or getattr(request, "body", None) or b""
        text = content.decode() if isinstance(content, bytes) else str(content)
        self.requests.append((request.method, request.url, dict(request.headers), text))
        headers = {
            "x-ms-request-id": "00000000-0000-0000-0000-000000000001",
            "x-ms-version": "2025-11-05",
            "Date": "Mon, 01 Jan 2024 00:00:00 GMT",
            "Content-Type": "application/xml",
        }
        query = _query(request.url)
        if request.method == "POST" and query == {"restype": "service", "comp": "userdelegationkey"}:
            body = RECORDED_USER_DELEGATION_KEY.format(
                start=_xml_field(text, "Start"), expiry=_xml_field(text, "Expiry")
            )
            return _ReplayedResponse(request, 200, headers, body.encode())
        return _ReplayedResponse(request, 404, {**headers, "x-ms-error-code": "ResourceNotFound"}, b"")

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aexit__(self, *args: object) -> None:
        return None


class FakeEntraCredential:
    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-entra-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None


async def test_managed_identity_signs_user_delegation_sas_with_a_cached_key() -> None:
    transport = RecordingTransport()
    credential = FakeEntraCredential()
    store = AzureBlobStore.from_account_url(
        "https://stockacct.blob.core.windows.net", credential, transport=transport, retry_total=0
    )
    try:
        before = datetime.now(UTC)
        url = await store.sas_url(
            ORIGINALS, "img/7.jpg", expires_in=timedelta(minutes=15), content_disposition="attachment"
        )
        second = await store.sas_url(ORIGINALS, "img/8.jpg", expires_in=timedelta(minutes=5))
        assert len(transport.requests) == 1  # the key is reused

        method, request_url, headers, body = transport.requests[0]
        assert method == "POST"
        assert request_url.startswith("https://stockacct.blob.core.windows.net/?")
        assert _query(request_url) == {"restype": "service", "comp": "userdelegationkey"}
        assert headers["Authorization"] == "Bearer fake-entra-token"
        assert credential.scopes == [("https://storage.azure.com/.default",)]
        key_start = _sas_time(_xml_field(body, "Start"))
        key_expiry = _sas_time(_xml_field(body, "Expiry"))
        assert key_start < before and key_expiry >= before + timedelta(minutes=15)

        assert url.startswith("https://stockacct.blob.core.windows.net/originals/img/7.jpg?")
        query = _query(url)
        assert query["skoid"] == "6f1c2a7e-0000-4000-8000-00000000c0de"
        assert query["sktid"] == "72f988bf-0000-4000-8000-0000000000aa"
        assert query["sks"] == "b" and query["skv"] == "2025-11-05"
        assert (query["sp"], query["sr"], query["spr"], query["rscd"]) == ("r", "b", "https", "attachment")
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", query["sig"])
        assert _sas_time(query["st"]) < before
        assert _sas_time(query["se"]) <= datetime.now(UTC) + timedelta(minutes=15)
        assert _sas_time(query["se"]) <= _sas_time(query["ske"])
        assert _query(second)["sig"] != query["sig"]

        # a SAS outliving the cached key makes the store fetch a longer-lived key
        long_lived = await store.sas_url(ORIGINALS, "img/7.jpg", expires_in=timedelta(days=1))
        assert len(transport.requests) == 2
        assert _sas_time(_query(long_lived)["se"]) <= _sas_time(_query(long_lived)["ske"])
        # nothing is signed past the 7-day maximum of a user delegation key
        capped = await store.sas_url(ORIGINALS, "img/7.jpg", expires_in=timedelta(days=30))
        assert _sas_time(_query(capped)["se"]) <= datetime.now(UTC) + timedelta(days=7)
    finally:
        await store.close()


# --- the Azurite process -----------------------------------------------------------------------


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_persistent_azurite_keeps_data_across_restarts_and_leaves_no_process(tmp_path) -> None:
    data_dir = tmp_path / "azurite"
    with AzuriteServer(data_dir, persist=True) as server:
        pid = server.pid
        assert pid is not None
        async with AzureBlobStore.from_connection_string(server.connection_string) as store:
            await store.ensure_containers()
            await store.put(ORIGINALS, "kept.jpg", b"survives", content_type="image/jpeg")
    assert not _process_group_alive(pid)

    with AzuriteServer(data_dir, persist=True) as server:
        async with AzureBlobStore.from_connection_string(server.connection_string) as store:
            assert await store.get(ORIGINALS, "kept.jpg") == b"survives"
        pid = server.pid
        assert pid is not None
    assert not _process_group_alive(pid)


def test_missing_azurite_says_how_to_install_it(tmp_path) -> None:
    server = AzuriteServer(persist=False, executable=tmp_path / "node_modules" / ".bin" / "azurite-blob")
    with pytest.raises(AzuriteNotInstalled, match="npm ci --prefix tools"):
        server.start()
    assert server.pid is None


def test_a_taken_port_is_a_clear_error(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = AzuriteServer(tmp_path, blob_port=port, persist=False)
        with pytest.raises(Exception, match=f"Port {port} is in use"):
            server.start()
        assert server.pid is None
