"""An admin works a moderation queue end to end on a real devhost: bus in, HTTP decisions, events out.

The processing pipeline is stood in for by publishing `image.processed` events through the outbox of
devhost's own database: from there on everything is the real thing (relay, Postgres bus, the
moderation trigger, the HTTP edge with local tokens, the outbox relaying moderation's decisions).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from shared.bus.outbox import add_to_outbox
from shared.db.embedded import EmbeddedPostgres
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token
from tests.fixtures.moderation import processed_event

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("moderation-devhost-var")
    env = devhost_environment(var_dir)
    log_path = var_dir.parent / f"devhost-{env['DEVHOST_PORT']}.log"
    proc = start_devhost(env, log_path)
    try:
        yield {"base": f"http://127.0.0.1:{env['DEVHOST_PORT']}/api", "env": env, "var_dir": var_dir}
    finally:
        stop_devhost(proc)


def _database(devhost) -> EmbeddedPostgres:
    # Joins the server devhost started (pgserver counts holders; stop() only lets go of ours).
    return EmbeddedPostgres(devhost["var_dir"] / "pg" / "data")


async def _publish(dsn: str, events) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for event in events:
                await add_to_outbox(conn, event, correlation_id=f"e2e-{event.image_id}")
    finally:
        await conn.close()


async def _published_subjects(dsn: str, image_ids: list[str]) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select body->>'image_id' as image_id, subject from bus.outbox "
            "where published_at is not null and body->>'image_id' = any($1::text[]) and subject <> 'image.processed' "
            "order by seq",
            image_ids,
        )
        return [(r["image_id"], r["subject"]) for r in rows]
    finally:
        await conn.close()


def _eventually(check, *, seconds: float = 60.0):
    """Poll until `check()` returns something truthy; the deadline only bounds a broken run."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)


def test_an_admin_works_a_queue_of_processed_uploads(devhost):
    base = devhost["base"]
    admin = {"Authorization": f"Bearer {token(devhost['env'], '--role', 'admin', '--sub', 'admin-ann')}"}
    contributor = {"Authorization": f"Bearer {token(devhost['env'], '--role', 'contributor', '--sub', 'c-1')}"}

    clean = processed_event(contributor_id="c-1")
    nsfw = processed_event(contributor_id="c-1", safety_score=0.92)
    few_keywords = processed_event(contributor_id="c-1", keywords=["coffee", "cup"])
    duplicate = processed_event(contributor_id="c-1", near_duplicate_of=clean.image_id)
    flagged = {str(e.image_id) for e in (nsfw, few_keywords, duplicate)}

    server = _database(devhost)
    dsn = server.start()
    try:
        asyncio.run(_publish(dsn, [clean, nsfw, few_keywords, duplicate]))

        # 1. The policy approved the clean one and queued the rest with their reasons.
        def queue_is_full():
            page = httpx.get(f"{base}/admin/moderation/queue", headers=admin, timeout=10).json()
            return page if {i["image_id"] for i in page["items"]} == flagged else None

        queue = _eventually(queue_is_full)
        reasons = {i["image_id"]: i["reasons"] for i in queue["items"]}
        assert reasons == {
            str(nsfw.image_id): ["nsfw_score"],
            str(few_keywords.image_id): ["missing_keywords"],
            str(duplicate.image_id): ["near_duplicate_of"],
        }
        queued_at = [i["queued_at"] for i in queue["items"]]
        assert queued_at == sorted(queued_at)  # oldest first
        auto = httpx.get(f"{base}/admin/images/{clean.image_id}", headers=admin, timeout=10).json()
        assert (auto["state"], auto["decided_by"]) == ("approved", "moderation-policy")
        only_nsfw = httpx.get(f"{base}/admin/moderation/queue", params={"reason": "nsfw_score"}, headers=admin)
        assert [i["image_id"] for i in only_nsfw.json()["items"]] == [str(nsfw.image_id)]
        assert httpx.get(f"{base}/admin/moderation/queue", headers=contributor).status_code == 403

        # 2. Fix the metadata of one and approve it; reject another; a second decision is refused.
        fixed = httpx.patch(
            f"{base}/admin/images/{few_keywords.image_id}",
            headers=admin,
            json={"keywords": ["coffee", "cup", "espresso", "crema", "cafe"]},
            timeout=10,
        )
        assert fixed.status_code == 200 and fixed.json()["reasons"] == []
        approve = httpx.post(f"{base}/admin/images/{few_keywords.image_id}/approve", headers=admin, timeout=10)
        assert approve.status_code == 200 and approve.json()["state"] == "approved"
        reject = httpx.post(
            f"{base}/admin/images/{nsfw.image_id}/reject",
            headers=admin,
            json={"reason_code": "nudity", "note": "Explicit content"},
            timeout=10,
        )
        assert reject.status_code == 200
        again = httpx.post(f"{base}/admin/images/{nsfw.image_id}/approve", headers=admin, timeout=10)
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")

        # 3. Bulk: the duplicate is rejected, a bogus id fails alone.
        bogus = str(uuid.uuid4())
        bulk = httpx.post(
            f"{base}/admin/images/moderate",
            headers=admin,
            json={"action": "reject", "image_ids": [str(duplicate.image_id), bogus], "reason_code": "duplicate"},
            timeout=30,
        )
        assert bulk.status_code == 200
        assert [(r["image_id"], r["status"]) for r in bulk.json()["results"]] == [
            (str(duplicate.image_id), 200),
            (bogus, 404),
        ]
        assert httpx.get(f"{base}/admin/moderation/queue", headers=admin).json()["total"] == 0

        # 4. Take the auto-approved one down.
        down = httpx.post(
            f"{base}/admin/images/{clean.image_id}/takedown", headers=admin, json={"reason": "DMCA"}, timeout=10
        )
        assert down.status_code == 200 and down.json()["state"] == "removed"

        # 5. The audit log has every admin action, newest first; every decision left on the bus.
        log = httpx.get(f"{base}/admin/audit-log", params={"actor": "admin-ann"}, headers=admin, timeout=10).json()
        assert [(e["action"], e["target_id"]) for e in log["items"]] == [
            ("image.takedown", str(clean.image_id)),
            ("image.reject", str(duplicate.image_id)),
            ("image.reject", str(nsfw.image_id)),
            ("image.approve", str(few_keywords.image_id)),
            ("image.edit", str(few_keywords.image_id)),
        ]
        ids = [str(e.image_id) for e in (clean, nsfw, few_keywords, duplicate)]
        expected = {
            (str(clean.image_id), "image.approved"),
            (str(clean.image_id), "image.removed"),
            (str(nsfw.image_id), "image.flagged"),
            (str(nsfw.image_id), "image.rejected"),
            (str(few_keywords.image_id), "image.flagged"),
            (str(few_keywords.image_id), "image.approved"),
            (str(duplicate.image_id), "image.flagged"),
            (str(duplicate.image_id), "image.rejected"),
        }
        _eventually(lambda: expected <= set(asyncio.run(_published_subjects(dsn, ids))))
    finally:
        server.stop()
