"""One audit trail: an admin action of any service reaches moderation's append-only audit log.

The producing service puts `audit.recorded` in its outbox in the transaction of its change; the relay
publishes it; moderation's `audit` subscription appends it once, however often it arrives.
"""

from __future__ import annotations

import asyncpg
import pytest

from functions.moderation import handlers
from functions.moderation.audit_trail import AUDIT_SUBSCRIPTION, append_audit_event
from functions.moderation.handlers import Actor
from functions.moderation.models import CategoryIn
from shared.audit import record_admin_action
from shared.bus.postgres_transport import PostgresTransport
from shared.bus.relay import OutboxRelay


class ChangeFailed(RuntimeError):
    pass


@pytest.fixture
async def bus(db):
    transport = PostgresTransport(db)
    yield transport
    await transport.close()


async def _checkout_refunds_by_hand(db, **overrides) -> None:
    """What another service's admin action does: its change and the audit event, one transaction."""
    entry = {
        "service": "checkout",
        "actor": "admin-alice",
        "action": "order.refund",
        "target_type": "order",
        "target_id": "ord-42",
        "before": {"status": "paid"},
        "after": {"status": "refunded"},
    }
    async with db.transaction() as conn:
        await record_admin_action(conn, **(entry | overrides))


async def _deliver_all(db, bus) -> list[str]:
    await OutboxRelay(db, bus).publish_pending()
    outcomes = []
    for message in await bus.receive("audit", AUDIT_SUBSCRIPTION, max_messages=50):
        outcomes.append(await append_audit_event(db, message))
        await bus.complete(message)
    return outcomes


async def test_another_services_admin_action_shows_in_the_audit_log_route(db, bus, api_app):
    await handlers.create_category(db, CategoryIn(slug="nature", name="Nature"), Actor("admin-bob"))
    await _checkout_refunds_by_hand(db)

    assert await _deliver_all(db, bus) == ["appended"]

    admin = api_app.token("admin-alice", "admin")
    every = (await api_app.request("GET", "admin/audit-log", token=admin)).json()
    assert [(e["service"], e["action"]) for e in every["items"]] == [
        ("checkout", "order.refund"),
        ("moderation", "category.create"),
    ]
    refund = every["items"][0]
    assert (refund["actor"], refund["target_type"], refund["target_id"]) == ("admin-alice", "order", "ord-42")
    assert (refund["before"], refund["after"]) == ({"status": "paid"}, {"status": "refunded"})
    only = (await api_app.request("GET", "admin/audit-log", token=admin, query={"service": "checkout"})).json()
    assert [e["action"] for e in only["items"]] == ["order.refund"] and only["total"] == 1
    ours = (await api_app.request("GET", "admin/audit-log", token=admin, query={"service": "moderation"})).json()
    assert [e["action"] for e in ours["items"]] == ["category.create"]
    refused = await api_app.request("GET", "admin/audit-log", token=admin, query={"service": "x" * 41})
    assert refused.status == 400 and refused.is_problem  # a bad query parameter, named


async def test_no_entry_is_recorded_for_a_change_that_rolled_back(db, bus):
    with pytest.raises(ChangeFailed):
        async with db.transaction() as conn:
            await record_admin_action(
                conn, service="checkout", actor="admin-alice", action="order.refund", target_type="order",
                target_id="ord-7",
            )  # fmt: skip
            raise ChangeFailed("the refund itself failed")

    assert await _deliver_all(db, bus) == []
    assert await db.pool.fetchval("select count(*) from moderation.audit_log") == 0


async def test_a_redelivered_or_republished_entry_appends_nothing(db, bus):
    await _checkout_refunds_by_hand(db)
    await OutboxRelay(db, bus).publish_pending()
    (message,) = await bus.receive("audit", AUDIT_SUBSCRIPTION)

    assert await append_audit_event(db, message) == "appended"
    assert await append_audit_event(db, message) == "duplicate"  # the same delivery again
    republished = type(message)(**{**message.__dict__, "message_id": "another-message-id"})
    assert await append_audit_event(db, republished) == "duplicate"  # same audit_id, new message id
    assert await db.pool.fetchval("select count(*) from moderation.audit_log") == 1


@pytest.mark.parametrize(
    "statement",
    [
        "update moderation.audit_log set service = 'moderation' where service = 'checkout'",
        "delete from moderation.audit_log where service = 'checkout'",
        "truncate moderation.audit_log",
    ],
)
async def test_entries_from_other_services_stay_append_only(db, bus, statement):
    await _checkout_refunds_by_hand(db)
    await _deliver_all(db, bus)
    before = [dict(r) for r in await db.pool.fetch("select * from moderation.audit_log")]

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.pool.execute(statement)

    assert [dict(r) for r in await db.pool.fetch("select * from moderation.audit_log")] == before


async def test_a_search_reindex_is_recorded_as_the_search_services_action(db, bus, pg_search_index):
    from functions.search_sync.reindex import reindex

    await reindex(db, pg_search_index, batch_size=10, actor="cli:ops@host-1")

    assert await _deliver_all(db, bus) == ["appended"]
    row = await db.pool.fetchrow("select service, actor, action, target_id, after from moderation.audit_log")
    assert dict(row) == {
        "service": "search",
        "actor": "cli:ops@host-1",
        "action": "search.reindex",
        "target_id": "images",
        "after": {"documents": 0, "batch_size": 10},
    }
