"""Dead letters for an admin: listed with their reason and filters, replayed to their own subscription with
a fresh delivery count, or discarded; each action audited through the outbox in the same transaction."""

from __future__ import annotations

import uuid

import pytest

from shared.bus.port import OutgoingMessage
from shared.bus.postgres_transport import PostgresTransport


async def _dead_letter(db, topic: str, subject: str, body: dict, *, reason: str | None = None) -> str:
    """Publish a message and exhaust it on every subscription it reaches; return its message id."""
    transport = PostgresTransport(db, max_delivery_count=1)
    message_id = str(uuid.uuid4())
    await transport.publish([OutgoingMessage(message_id, topic, subject, body)])
    for (row,) in await db.pool.fetch(
        "select subscription from bus.messages where message_id = $1 and state = 'active'", message_id
    ):
        (received,) = await transport.receive(topic, row, max_messages=1)
        if reason:
            await transport.dead_letter(received, reason, "handler said no")
        else:
            await transport.abandon(received, "ValidationError: 2 validation errors for ImageUploaded")
    return message_id


def _admin(app):
    return app.token("admin-ada", "admin")


async def _audit_rows(db) -> list[dict]:
    rows = await db.pool.fetch("select body from bus.outbox where subject = 'audit.recorded' order by seq")
    return [r["body"] for r in rows]


async def test_an_admin_lists_dead_letters_with_their_reason_and_filters(api_app):
    db = api_app.runtime.db
    poison = await _dead_letter(db, "images", "image.uploaded", {"poison": True})
    ping = await _dead_letter(db, "platform", "platform.ping", {"nonce": 1}, reason="InvalidBody")

    listed = await api_app.request("GET", "admin/dead-letters", token=_admin(api_app))
    assert listed.status == 200, listed.json()
    items = listed.json()["items"]
    assert {(i["message_id"], i["topic"], i["subscription"]) for i in items} == {
        (poison, "images", "processing"),
        (ping, "platform", "health"),
    }
    (uploaded,) = [i for i in items if i["message_id"] == poison]
    assert uploaded["reason"] == "MaxDeliveryCountExceeded"
    assert "ValidationError" in uploaded["description"]
    assert uploaded["body"] == {"poison": True} and uploaded["delivery_count"] == 1
    assert uploaded["id"].startswith("images:processing:")

    for query, expected in [
        ({"topic": "platform"}, {ping}),
        ({"subscription": "processing"}, {poison}),
        ({"subject": "image.uploaded"}, {poison}),
        ({"reason": "InvalidBody"}, {ping}),
        ({"topic": "orders"}, set()),
    ]:
        got = await api_app.request("GET", "admin/dead-letters", token=_admin(api_app), query=query)
        assert {i["message_id"] for i in got.json()["items"]} == expected, query
    bad = await api_app.request("GET", "admin/dead-letters", token=_admin(api_app), query={"topic": "IMAGES;--"})
    assert bad.status == 400  # the edge refuses a bad query parameter


async def test_a_replayed_dead_letter_goes_back_to_its_own_subscription_only_and_is_audited(api_app):
    db = api_app.runtime.db
    message_id = await _dead_letter(db, "images", "image.processed", {"poison": True})
    items = (await api_app.request("GET", "admin/dead-letters", token=_admin(api_app))).json()["items"]
    assert {i["subscription"] for i in items} == {"ingestion", "moderation", "search-sync"}
    letter = next(i for i in items if i["subscription"] == "moderation")

    replayed = await api_app.request("POST", f"admin/dead-letters/{letter['id']}/replay", token=_admin(api_app))

    assert replayed.status == 200, replayed.json()
    assert replayed.json() == {"id": letter["id"], "action": "replay", "message_id": message_id}
    transport = PostgresTransport(db)
    (again,) = await transport.receive("images", "moderation", max_messages=5)
    assert (again.message_id, again.delivery_count, again.body) == (message_id, 1, {"poison": True})
    assert await transport.receive("images", "ingestion", max_messages=5) == []  # the others stay dead-lettered
    left = (await api_app.request("GET", "admin/dead-letters", token=_admin(api_app))).json()["items"]
    assert {i["subscription"] for i in left} == {"ingestion", "search-sync"}
    (entry,) = await _audit_rows(db)
    assert (entry["actor"], entry["action"], entry["target_type"], entry["target_id"], entry["service"]) == (
        "admin-ada",
        "dead_letter.replay",
        "dead_letter",
        letter["id"],
        "platform",
    )
    assert entry["before"]["reason"] == "MaxDeliveryCountExceeded" and entry["after"] == {"state": "replayed"}

    # Replayed once: the same id is no longer a dead letter.
    twice = await api_app.request("POST", f"admin/dead-letters/{letter['id']}/replay", token=_admin(api_app))
    assert twice.status == 404 and len(await _audit_rows(db)) == 1


async def test_a_discarded_dead_letter_is_gone_and_audited(api_app):
    db = api_app.runtime.db
    message_id = await _dead_letter(db, "platform", "platform.ping", {"nonce": 1})
    (letter,) = (await api_app.request("GET", "admin/dead-letters", token=_admin(api_app))).json()["items"]

    discarded = await api_app.request("POST", f"admin/dead-letters/{letter['id']}/discard", token=_admin(api_app))

    assert discarded.status == 200 and discarded.json()["message_id"] == message_id
    assert await db.pool.fetchval("select count(*) from bus.messages where message_id = $1", message_id) == 0
    (entry,) = await _audit_rows(db)
    assert (entry["action"], entry["after"]) == ("dead_letter.discard", {"state": "discarded"})


@pytest.mark.parametrize(
    "letter_id", ["images:processing:999999", "nope:processing:1", "images:nope:1", "images:processing:x", "1"]
)
async def test_an_unknown_or_malformed_id_is_404_and_changes_nothing(api_app, letter_id):
    db = api_app.runtime.db
    await _dead_letter(db, "platform", "platform.ping", {"nonce": 1})
    for action in ("replay", "discard"):
        response = await api_app.request("POST", f"admin/dead-letters/{letter_id}/{action}", token=_admin(api_app))
        assert response.status == 404 and response.json()["type"].endswith("/dead-letter-not-found")
    assert await db.pool.fetchval("select count(*) from bus.messages where state = 'deadlettered'") == 1
    assert await _audit_rows(db) == []


async def test_a_live_message_cannot_be_replayed_or_discarded_as_if_dead(api_app):
    db = api_app.runtime.db
    await PostgresTransport(db).publish([OutgoingMessage("live-1", "platform", "platform.ping", {"nonce": "n"})])
    seq = await db.pool.fetchval("select seq from bus.messages where message_id = 'live-1'")
    response = await api_app.request("POST", f"admin/dead-letters/platform:health:{seq}/discard", token=_admin(api_app))
    assert response.status == 404
    assert await db.pool.fetchval("select state from bus.messages where seq = $1", seq) == "active"
