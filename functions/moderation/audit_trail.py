"""The one audit trail: other services' admin actions, appended to moderation's append-only audit log.

Design (issue 12): every admin action of every service ends in `moderation.audit_log`, which the
database keeps append-only (0006) and `GET /api/admin/audit-log` serves. Services never import each
other nor touch each other's schemas, so another service records an action by putting `audit.recorded`
in its own outbox in the transaction of the change (`shared.audit.record_admin_action`): no change
without its entry, no entry without its change. The relay publishes it on the `audit` topic; this
subscription appends it. Delivery is at least once, so the append is idempotent twice over: the inbox
claims the message id and the table's unique `audit_id` refuses a second copy of the same entry (e.g.
an event re-published under another message id).
"""

from __future__ import annotations

import structlog

from shared.bus.events import AuditRecorded
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.db import Database

AUDIT_SUBSCRIPTION = "moderation"  # on the `audit` topic
_INBOX_KEY = "audit"  # inbox rows of this subscription, apart from moderation's `images` one
log = structlog.get_logger()


async def append_audit_event(db: Database, message: ReceivedMessage) -> str:
    """Append the entry the event carries; 'appended', or 'duplicate' when it is already in the log."""
    entry = AuditRecorded.model_validate(message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "moderation", _INBOX_KEY, message.message_id):
            return "duplicate"
        appended = await conn.fetchval(
            """
            insert into moderation.audit_log
                (audit_id, service, at, actor, action, target_type, target_id, before, after, correlation_id)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            on conflict (audit_id) do nothing
            returning true
            """,
            entry.audit_id,
            entry.service,
            entry.at,
            entry.actor,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.before,
            entry.after,
            message.correlation_id,
        )
    return "appended" if appended else "duplicate"
