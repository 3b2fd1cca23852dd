"""Payouts' admin actions in the one audit trail: `audit.recorded` through the outbox, in the transaction
of the change, so an action and its audit entry commit together or not at all (moderation appends it
to the append-only audit log it serves)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.bus.events import AuditRecorded
from shared.bus.outbox import add_to_outbox


async def record_admin_action(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> uuid.UUID:
    audit_id = uuid.uuid4()
    await add_to_outbox(
        conn,
        AuditRecorded(
            audit_id=audit_id,
            service="payouts",
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
        ),
        message_id=f"audit-{audit_id}",
    )
    return audit_id
