"""`BlobStore` on the real async Azure SDK (azure.storage.blob.aio): Azurite locally, Blob Storage in Azure.

Two ways in:
- `AzureBlobStore.from_connection_string(...)`: Azurite, or an account key in Azure. SAS tokens are
  signed with the account key.
- `AzureBlobStore.from_account_url(url)`: managed identity (DefaultAzureCredential). SAS tokens are
  user-delegation SAS, signed with a user delegation key that is fetched once and reused until
  shortly before it expires (the identity needs Storage Blob Data Contributor, which includes
  generateUserDelegationKey).

Any `BlobServiceClient` keyword (e.g. `transport=` to replay recorded responses in tests) passes through.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContentSettings, CorsRule, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobClient, BlobServiceClient

from shared.storage.port import (
    CONTAINERS,
    DEFAULT_SAS_LIFETIME,
    INCOMING,
    PUBLIC_CONTAINERS,
    BlobAlreadyExists,
    BlobData,
    BlobInfo,
    BlobNotFound,
    CopyFailed,
    StorageError,
)

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.config import Settings

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_BLOB_CLIENTS_KEPT = 128  # a few steps of every image in flight
# Client tuning: uploads of unknown length go in 4 MiB blocks; downloads come in 4 MiB chunks
# (stream() memory stays bounded); bytes up to 8 MiB go in one Put Blob.
_CLIENT_DEFAULTS: dict[str, Any] = {
    "max_block_size": 4 * MiB,
    "max_single_put_size": 8 * MiB,
    "max_single_get_size": 4 * MiB,
    "max_chunk_get_size": 4 * MiB,
}
# With trust_env, aiohttp looks up proxy variables and reads ~/.netrc on a thread for every request (a
# tenth of a worker's storage CPU in bench/pipeline.py). Only when a proxy is configured is that needed.
_CLIENT_DEFAULTS["use_env_settings"] = bool(urllib.request.getproxies())
_TRANSFER_CONCURRENCY = 4
_FILE_READ_SIZE = 4 * MiB

CLOCK_SKEW = timedelta(minutes=5)  # SAS and delegation keys start this far in the past
SAS_PERMISSION_LETTERS = frozenset("racwdxytmei")  # blob-level SAS permissions, in Azure's canonical order
_SAS_CANONICAL_ORDER = "racwdxytmei"
MAX_DELEGATION_KEY_LIFETIME = timedelta(days=7) - timedelta(minutes=10)  # Azure allows at most 7 days
_KEY_REFRESH_MARGIN = timedelta(minutes=5)
_COPY_SOURCE_SAS_LIFETIME = timedelta(hours=1)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _translate(action: str, container: str, name: str = ""):
    """Map SDK exceptions to the port's typed errors."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise BlobNotFound(container, name) from exc
    except ResourceExistsError as exc:
        raise BlobAlreadyExists(container, name) from exc
    except AzureError as exc:
        where = f"{container}/{name}" if name else container
        raise StorageError(f"{action} {where} failed: {_first_line(exc)}") from exc


def _normalize_permissions(permissions: str) -> str:
    letters = set(permissions)
    if not permissions or not letters <= SAS_PERMISSION_LETTERS:
        raise ValueError(
            f"invalid SAS permissions {permissions!r}: use letters from {_SAS_CANONICAL_ORDER!r} "
            "(e.g. 'r' to download, 'cw' to upload)"
        )
    return "".join(ch for ch in _SAS_CANONICAL_ORDER if ch in letters)


async def _count_chunks(chunks: AsyncIterable[bytes], counter: list[int]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if chunk:
            counter[0] += len(chunk)
            yield bytes(chunk)


async def _file_chunks(stream: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := stream.read(_FILE_READ_SIZE):
        yield chunk


def _remaining_length(stream: IO[bytes]) -> int | None:
    try:
        if not stream.seekable():
            return None
        pos = stream.tell()
        end = stream.seek(0, 2)
        stream.seek(pos)
        return end - pos
    except (AttributeError, OSError):
        return None


class AzureBlobStore:
    """The blob storage adapter. Build it with one of the classmethods; close it with `close()`."""

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        owned_credential: AsyncTokenCredential | None = None,
        public_base_url: str | None = None,
        delegation_key_lifetime: timedelta = timedelta(hours=2),
        ping_timeout: float = 5.0,
    ) -> None:
        self._svc = service
        self._owned_credential = owned_credential
        self._public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._key_lifetime = min(delegation_key_lifetime, MAX_DELEGATION_KEY_LIFETIME)
        self._ping_timeout = ping_timeout
        self._delegation_key: UserDelegationKey | None = None
        self._delegation_key_expiry: datetime | None = None
        self._key_lock = asyncio.Lock()
        self._blob_clients: OrderedDict[tuple[str, str], BlobClient] = OrderedDict()

        credential = service.credential
        self._account_key: str | None = getattr(credential, "account_key", None)
        self._uses_token = credential is not None and hasattr(credential, "get_token")

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_connection_string(
        cls, connection_string: str, *, public_base_url: str | None = None, **client_kwargs: Any
    ) -> AzureBlobStore:
        """Azurite or an account-key connection string; SAS tokens are signed with the account key."""
        service = BlobServiceClient.from_connection_string(connection_string, **{**_CLIENT_DEFAULTS, **client_kwargs})
        return cls(service, public_base_url=public_base_url)

    @classmethod
    def from_account_url(
        cls,
        account_url: str,
        credential: AsyncTokenCredential | None = None,
        *,
        public_base_url: str | None = None,
        delegation_key_lifetime: timedelta = timedelta(hours=2),
        **client_kwargs: Any,
    ) -> AzureBlobStore:
        """https://<account>.blob.core.windows.net with an Entra ID token credential (default: managed
        identity through DefaultAzureCredential, closed with the store); SAS tokens are user-delegation SAS."""
        owned = None
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = owned = DefaultAzureCredential()
        service = BlobServiceClient(account_url, credential=credential, **{**_CLIENT_DEFAULTS, **client_kwargs})
        return cls(
            service,
            owned_credential=owned,
            public_base_url=public_base_url,
            delegation_key_lifetime=delegation_key_lifetime,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **client_kwargs: Any) -> AzureBlobStore:
        """STORAGE_CONNECTION_STRING if set, else STORAGE_ACCOUNT_URL with managed identity."""
        if settings.STORAGE_CONNECTION_STRING:
            return cls.from_connection_string(
                settings.STORAGE_CONNECTION_STRING, public_base_url=settings.STORAGE_PUBLIC_BASE_URL, **client_kwargs
            )
        if settings.STORAGE_ACCOUNT_URL:
            return cls.from_account_url(
                settings.STORAGE_ACCOUNT_URL, public_base_url=settings.STORAGE_PUBLIC_BASE_URL, **client_kwargs
            )
        from shared.config import ConfigError

        raise ConfigError(
            "Blob storage is not configured: set STORAGE_CONNECTION_STRING (or AzureWebJobsStorage), or "
            "STORAGE_ACCOUNT_URL to use managed identity. Locally devhost starts Azurite and sets it."
        )

    @property
    def account_name(self) -> str:
        return self._svc.account_name or ""

    @property
    def service_client(self) -> BlobServiceClient:
        """The underlying SDK client, for operations the port does not cover."""
        return self._svc

    async def __aenter__(self) -> AzureBlobStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._svc.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()

    # --- containers -----------------------------------------------------------------------------

    async def ensure_containers(self) -> None:
        await asyncio.gather(*(self._ensure_container(name, public) for name, public in CONTAINERS.items()))

    async def allow_browser_uploads(self, origins: list[str]) -> None:
        """CORS on the blob service so pages from `origins` may PUT to an upload SAS (and read blobs).

        Replaces the service's CORS rules: they belong to the app. In Azure, infra/ sets the same rule.
        """
        rule = CorsRule(
            allowed_origins=sorted(set(origins)),
            allowed_methods=["PUT", "GET", "HEAD"],
            # x-ms-blob-type is the one the SAS PUT needs; the others are what browsers and the SDK add.
            allowed_headers=["x-ms-blob-type", "x-ms-version", "x-ms-date", "x-ms-client-request-id", "content-type"],
            exposed_headers=["etag", "x-ms-request-id"],
            max_age_in_seconds=3600,
        )
        with _translate("set CORS rules", "blob service"):
            await self._svc.set_service_properties(cors=[rule])

    async def _ensure_container(self, name: str, public: bool) -> None:
        wanted = "blob" if public else None
        client = self._svc.get_container_client(name)
        try:
            with _translate("create container", name):
                try:
                    await client.create_container(public_access=wanted)
                    log.info("created blob container %s (public=%s)", name, public)
                    return
                except ResourceExistsError:
                    pass
                policy = await client.get_container_access_policy()
                if policy.get("public_access") != wanted:
                    identifiers = {si.id: si.access_policy for si in policy.get("signed_identifiers") or []}
                    await client.set_container_access_policy(signed_identifiers=identifiers, public_access=wanted)
                    log.info("set public access of blob container %s to %s", name, wanted)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, HttpResponseError) and cause.error_code == "PublicAccessNotPermitted":
                raise StorageError(
                    f"container {name} needs public blob access but the storage account disallows it "
                    "(allowBlobPublicAccess=false); enable it in infra/ or serve renditions another way"
                ) from cause
            raise

    # --- blobs ----------------------------------------------------------------------------------

    def _blob(self, container: str, name: str) -> BlobClient:
        # Building a BlobClient costs about a millisecond of CPU (the SDK sets up a generated client and its
        # serializers each time); one image's steps ask for the same few blobs several times in a row.
        key = (container, name)
        client = self._blob_clients.pop(key, None)
        if client is None:
            client = self._svc.get_blob_client(container, name)
        self._blob_clients[key] = client
        if len(self._blob_clients) > _BLOB_CLIENTS_KEPT:
            del self._blob_clients[next(iter(self._blob_clients))]  # the least recently used
        return client

    def _blob_url(self, container: str, name: str) -> str:
        """The URL a BlobClient would have, without building one."""
        return f"{_without_query(self._svc.url).rstrip('/')}/{container}/{quote(name, safe='~/')}"

    async def put(
        self,
        container: str,
        name: str,
        data: BlobData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = True,
    ) -> BlobInfo:
        counter = [0]
        length: int | None
        body: Any
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            length = len(body)
        elif hasattr(data, "read"):
            stream: IO[bytes] = data  # type: ignore[assignment]
            length = _remaining_length(stream)
            body = stream if length is not None else _count_chunks(_file_chunks(stream), counter)
        elif isinstance(data, AsyncIterable):
            body, length = _count_chunks(data, counter), None
        else:
            raise TypeError(f"put() takes bytes, a binary file or an async iterable of bytes, not {type(data)!r}")

        content_type = content_type or "application/octet-stream"
        meta = dict(metadata or {})
        with _translate("upload", container, name):
            response = await self._blob(container, name).upload_blob(
                body,
                length=length,
                overwrite=overwrite,
                content_settings=ContentSettings(content_type=content_type),
                metadata=meta or None,
                max_concurrency=_TRANSFER_CONCURRENCY,
            )
        return BlobInfo(
            name=name,
            size=length if length is not None else counter[0],
            content_type=content_type,
            etag=response["etag"],
            last_modified=response["last_modified"],
            metadata=meta,
        )

    async def get(self, container: str, name: str) -> bytes:
        with _translate("download", container, name):
            downloader = await self._blob(container, name).download_blob(max_concurrency=_TRANSFER_CONCURRENCY)
            return await downloader.readall()

    async def get_with_info(self, container: str, name: str) -> tuple[bytes, BlobInfo]:
        with _translate("download", container, name):
            downloader = await self._blob(container, name).download_blob(max_concurrency=_TRANSFER_CONCURRENCY)
            data = await downloader.readall()
        info = _info(downloader.properties)
        return data, replace(info, name=name, size=len(data))

    async def get_range(self, container: str, name: str, offset: int, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        if length == 0:
            return b""
        with _translate("download", container, name):
            try:
                downloader = await self._blob(container, name).download_blob(offset=offset, length=length)
            except HttpResponseError as exc:
                if exc.status_code == 416:  # the range starts at or past the end of the blob
                    return b""
                raise
            return await downloader.readall()

    async def stream(self, container: str, name: str) -> AsyncIterator[bytes]:
        with _translate("download", container, name):
            downloader = await self._blob(container, name).download_blob()
            async for chunk in downloader.chunks():
                yield chunk

    async def properties(self, container: str, name: str) -> BlobInfo | None:
        try:
            with _translate("get properties of", container, name):
                props = await self._blob(container, name).get_blob_properties()
        except BlobNotFound:
            return None
        return _info(props)

    async def exists(self, container: str, name: str) -> bool:
        with _translate("check", container, name):
            return await self._blob(container, name).exists()

    async def delete(self, container: str, name: str, *, if_etag: str | None = None) -> bool:
        conditions: dict[str, Any] = {}
        if if_etag is not None:
            conditions = {"etag": if_etag, "match_condition": MatchConditions.IfNotModified}
        try:
            with _translate("delete", container, name):
                await self._blob(container, name).delete_blob(delete_snapshots="include", **conditions)
        except BlobNotFound:
            return False
        except StorageError as exc:
            if isinstance(exc.__cause__, ResourceModifiedError):
                return False  # replaced since that version was read: the newer blob stays
            raise
        return True

    async def copy(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        source: BlobInfo | None = None,
        content_type: str | None = None,
        max_wait_seconds: float = 600.0,
    ) -> BlobInfo:
        # A short read SAS authorizes the source the same way for account keys and managed identity.
        source_url = await self.sas_url(src_container, src_name, permissions="r", expires_in=_COPY_SOURCE_SAS_LIFETIME)
        dst = self._blob(dst_container, dst_name)
        conditions: dict[str, Any] = {}
        if source is not None:
            conditions = {"source_etag": source.etag, "source_match_condition": MatchConditions.IfNotModified}
        try:
            response = await dst.start_copy_from_url(source_url, **conditions)
        except ResourceModifiedError as exc:
            raise CopyFailed(f"copy {src_container}/{src_name}: the source changed since it was read") from exc
        except ResourceNotFoundError as exc:
            if exc.error_code == "ContainerNotFound":
                raise BlobNotFound(dst_container, dst_name) from exc
            raise BlobNotFound(src_container, src_name) from exc
        except AzureError as exc:
            raise StorageError(
                f"copy {src_container}/{src_name} -> {dst_container}/{dst_name} failed: {_first_line(exc)}"
            ) from exc

        copied = await self._copy_done(
            response, src_container, src_name, dst_container, dst_name, max_wait_seconds, source
        )
        if content_type is not None and content_type != (source or copied).content_type:
            with _translate("set properties of", dst_container, dst_name):
                await dst.set_http_headers(ContentSettings(content_type=content_type))
            return replace(copied, content_type=content_type)
        return copied

    async def _copy_done(
        self,
        response: dict[str, Any],
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        max_wait_seconds: float,
        source: BlobInfo | None = None,
    ) -> BlobInfo:
        dst = self._blob(dst_container, dst_name)
        copy_id = response.get("copy_id")
        status = response.get("copy_status")
        if status == "success" and source is not None:
            # Done at once (the usual case within an account): the caller knows the source, no need to ask.
            return replace(source, name=dst_name, etag=response["etag"], last_modified=response["last_modified"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_seconds
        delay = 0.05
        while True:
            with _translate("get properties of", dst_container, dst_name):
                props = await dst.get_blob_properties()
            status = props.copy.status or status
            if status == "success":
                return _info(props)
            if status != "pending":
                raise CopyFailed(
                    f"copy {src_container}/{src_name} -> {dst_container}/{dst_name} ended {status}: "
                    f"{props.copy.status_description or 'no description'}"
                )
            if loop.time() >= deadline:
                try:
                    await dst.abort_copy(copy_id)
                except AzureError:
                    log.warning("could not abort copy %s to %s/%s", copy_id, dst_container, dst_name)
                raise CopyFailed(
                    f"copy {src_container}/{src_name} -> {dst_container}/{dst_name} not done after {max_wait_seconds}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def list(self, container: str, prefix: str = "") -> AsyncIterator[BlobInfo]:
        client = self._svc.get_container_client(container)
        with _translate("list", container, prefix):
            async for props in client.list_blobs(name_starts_with=prefix or None, include=["metadata"]):
                yield _info(props)

    # --- URLs -----------------------------------------------------------------------------------

    def public_url(self, container: str, name: str) -> str:
        if container not in PUBLIC_CONTAINERS:
            raise ValueError(f"container {container!r} is private; its blobs are served only through SAS URLs")
        if self._public_base_url:
            return f"{self._public_base_url}/{container}/{quote(name, safe='/~')}"
        return self._blob_url(container, name)  # processing asks three times per image

    async def sas_url(
        self,
        container: str,
        name: str,
        *,
        permissions: str = "r",
        expires_in: timedelta = DEFAULT_SAS_LIFETIME,
        content_disposition: str | None = None,
    ) -> str:
        permission = _normalize_permissions(permissions)
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
        now = _utcnow()
        start = (now - CLOCK_SKEW).replace(microsecond=0)
        expiry = (now + expires_in).replace(microsecond=0)  # truncated: never later than asked
        blob_url = self._blob_url(container, name)
        https_only = blob_url.startswith("https://")
        common: dict[str, Any] = {
            "account_name": self.account_name,
            "container_name": container,
            "blob_name": name,
            "permission": permission,
            "start": start,
            "content_disposition": content_disposition,
            "protocol": "https" if https_only else None,
        }
        if self._account_key:
            token = generate_blob_sas(account_key=self._account_key, expiry=expiry, **common)
        elif self._uses_token:
            key, key_expiry = await self._user_delegation_key(expiry)
            token = generate_blob_sas(user_delegation_key=key, expiry=min(expiry, key_expiry), **common)
        else:
            raise StorageError(
                "cannot sign SAS URLs: the storage credential has neither an account key nor an Entra ID token"
            )
        return f"{blob_url}?{token}"

    async def _user_delegation_key(self, needed_until: datetime) -> tuple[UserDelegationKey, datetime]:
        """The cached user delegation key, fetched anew when it would expire before needed_until."""
        async with self._key_lock:
            key, key_expiry = self._delegation_key, self._delegation_key_expiry
            if key is None or key_expiry is None or key_expiry - _KEY_REFRESH_MARGIN < needed_until:
                now = _utcnow()
                lifetime = max(self._key_lifetime, needed_until - now + _KEY_REFRESH_MARGIN)
                expiry = (now + min(lifetime, MAX_DELEGATION_KEY_LIFETIME)).replace(microsecond=0)
                start = (now - CLOCK_SKEW).replace(microsecond=0)
                with _translate("get user delegation key for", self.account_name):
                    key = await self._svc.get_user_delegation_key(start, expiry)
                key_expiry = _parse_time(key.signed_expiry) or expiry
                self._delegation_key, self._delegation_key_expiry = key, key_expiry
                log.info("fetched a user delegation key valid until %s", key_expiry.isoformat())
            return key, key_expiry

    # --- health ---------------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            await asyncio.wait_for(
                self._svc.get_container_client(INCOMING).get_container_properties(), self._ping_timeout
            )
        except ResourceNotFoundError:
            return True  # storage answered; the container is just not created yet
        except Exception as exc:
            log.warning("blob storage ping failed: %s", _first_line(exc))
            return False
        return True


def _without_query(url: str) -> str:
    """A client built from a SAS connection string carries that SAS in its URLs: never hand it out."""
    return url.split("?", 1)[0]


def _info(props: Any) -> BlobInfo:
    return BlobInfo(
        name=props.name,
        size=props.size,
        content_type=props.content_settings.content_type,
        etag=props.etag,
        last_modified=props.last_modified,
        metadata=dict(props.metadata or {}),
    )
