"""Record an admin action in the one audit trail, from any service.

The trail is moderation's append-only `moderation.audit_log`, served by `GET /api/admin/audit-log`.
A service does not write that table (services do not reach into each other's schemas or import each
other): it puts an `audit.recorded` event in its outbox, in the transaction of the change it records, so
the entry exists exactly when the change does. The relay publishes it on the `audit` topic and
moderation's subscription appends it, once per `audit_id` however often it is delivered. Moderation's
own actions are written to the table directly (same transaction, service 'moderation').
"""

from __future__ import annotations

import getpass
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.bus.events import AuditRecorded
from shared.bus.outbox import add_to_outbox


async def record_admin_action(
    conn: asyncpg.Connection,
    *,
    service: str,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Queue the audit entry in the caller's transaction (call it inside `db.transaction()`); its id."""
    entry = AuditRecorded(
        audit_id=uuid.uuid4(),
        service=service,
        at=datetime.now(UTC),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
    )
    await add_to_outbox(conn, entry)
    return entry.audit_id


def command_line_operator() -> str:
    """Who runs an operator command (migration, reindex) when no signed-in admin does: `cli:<user>@<host>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a bare container)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"
