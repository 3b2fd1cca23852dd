"""The audit log: every admin action with who, what, when, before and after; append-only in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import structlog

from functions.moderation import handlers
from functions.moderation.handlers import Actor
from functions.moderation.models import AuditQuery, CategoryIn, CategoryPatch


async def _some_entries(db) -> None:
    await handlers.create_category(db, CategoryIn(slug="nature", name="Nature"), Actor("admin-alice"))
    await handlers.create_category(db, CategoryIn(slug="people", name="People"), Actor("admin-bob"))
    await handlers.change_category(db, "nature", CategoryPatch(retired=True), Actor("admin-bob"))


@pytest.mark.parametrize(
    "statement",
    [
        "update moderation.audit_log set actor = 'someone-else'",
        "delete from moderation.audit_log",
        "truncate moderation.audit_log",
    ],
)
async def test_the_database_refuses_to_change_or_remove_audit_entries(db, statement):
    await _some_entries(db)
    before = [dict(r) for r in await db.pool.fetch("select * from moderation.audit_log order by id")]

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.pool.execute(statement)

    assert [dict(r) for r in await db.pool.fetch("select * from moderation.audit_log order by id")] == before
    assert len(before) == 3


async def test_an_entry_records_who_what_when_and_the_correlation_id(db):
    started = await db.pool.fetchval("select now()")
    with structlog.contextvars.bound_contextvars(correlation_id="req-42"):
        await handlers.create_category(db, CategoryIn(slug="nature", name="Nature"), Actor("admin-alice"))
    (entry,) = (await handlers.read_audit_log(db, AuditQuery()))["items"]
    assert (entry["actor"], entry["action"], entry["target_type"], entry["target_id"]) == (
        "admin-alice",
        "category.create",
        "category",
        "nature",
    )
    assert entry["before"] is None and entry["after"] == {"name": "Nature", "retired": False}
    assert entry["correlation_id"] == "req-42"
    assert entry["at"] >= started


async def test_the_log_reads_newest_first_with_filters_and_paging(db):
    await _some_entries(db)

    async def actions(**filters) -> list[tuple[str, str]]:
        page = await handlers.read_audit_log(db, AuditQuery(**filters))
        return [(e["action"], e["target_id"]) for e in page["items"]]

    assert await actions() == [
        ("category.change", "nature"),
        ("category.create", "people"),
        ("category.create", "nature"),
    ]
    assert await actions(actor="admin-bob") == [("category.change", "nature"), ("category.create", "people")]
    assert await actions(action="category.create") == [("category.create", "people"), ("category.create", "nature")]
    assert await actions(target="nature") == [("category.change", "nature"), ("category.create", "nature")]
    now = datetime.now(UTC)
    assert len(await actions(since=now - timedelta(minutes=5), until=now + timedelta(minutes=5))) == 3
    assert await actions(since=now + timedelta(minutes=5)) == []
    assert await actions(until=now - timedelta(minutes=5)) == []
    assert await actions(since=now + timedelta(minutes=5), until=now - timedelta(minutes=5)) == []  # an empty range

    second = await handlers.read_audit_log(db, AuditQuery(page=2, per_page=2))
    assert [e["target_id"] for e in second["items"]] == ["nature"] and second["total"] == 3
    beyond = await handlers.read_audit_log(db, AuditQuery(page=9, per_page=2))
    assert beyond["items"] == [] and beyond["total"] == 3


async def test_a_refused_change_leaves_no_audit_entry(db):
    await handlers.create_category(db, CategoryIn(slug="nature", name="Nature"), Actor("admin-alice"))
    with pytest.raises(handlers.AlreadyExists):
        await handlers.create_category(db, CategoryIn(slug="nature", name="Nature again"), Actor("admin-bob"))
    assert (await handlers.read_audit_log(db, AuditQuery()))["total"] == 1
