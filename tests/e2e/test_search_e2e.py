"""Search end to end under devhost: image events through the outbox and bus, search_sync, then the HTTP API."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from shared.bus.events import ImageRemoved
from shared.bus.outbox import add_to_outbox
from shared.db.embedded import EmbeddedPostgres
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token
from tests.fixtures.search_corpus import approved, listing

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("devhost-search")
    env = devhost_environment(var_dir)
    log_path = var_dir.parent / f"devhost-{env['DEVHOST_PORT']}.log"
    proc = start_devhost(env, log_path)
    server = EmbeddedPostgres(var_dir / "pg" / "data")  # joins the server devhost started
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "dsn": server.start()}
    finally:
        server.stop()
        stop_devhost(proc)


def emit(devhost, *events) -> None:
    """What a producing service does: events into the outbox in one transaction."""

    async def write() -> None:
        conn = await asyncpg.connect(devhost["dsn"])
        try:
            async with conn.transaction():
                for event in events:
                    await add_to_outbox(conn, event, correlation_id="e2e-search")
        finally:
            await conn.close()

    asyncio.run(write())


def wait_for(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_an_approved_image_is_findable_within_seconds_and_gone_once_removed(devhost):
    word = f"zebra{uuid.uuid4().hex[:6]}"  # unique, so the test does not depend on other data
    event = approved(listing(title=f"A {word} at the waterhole", keywords=[word, "savanna"], category="animals"))
    emit(devhost, event)

    def search_ids() -> list[str]:
        response = httpx.get(f"{devhost['base']}/search", params={"q": word}, timeout=30)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert wait_for(search_ids) == [str(event.image_id)]
    detail = httpx.get(f"{devhost['base']}/images/{event.image_id}", timeout=10)
    assert detail.status_code == 200 and detail.json()["keywords"] == [word, "savanna"]
    suggest = httpx.get(f"{devhost['base']}/keywords/suggest", params={"q": word[:6]}, timeout=10).json()
    assert {"keyword": word, "images": 1} in suggest["suggestions"]

    emit(devhost, ImageRemoved(image_id=event.image_id, contributor_id="carol", revision=3, reason="takedown"))
    assert wait_for(lambda: search_ids() == []) is True
    admin = token(devhost["env"], "--role", "admin", "--sub", "alice")
    removed = httpx.get(
        f"{devhost['base']}/admin/search",
        params={"q": word, "status": "removed"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert [i["id"] for i in removed.json()["items"]] == [str(event.image_id)]
    assert httpx.get(f"{devhost['base']}/search", params={"per_page": 500}, timeout=10).status_code == 400
