"""Dead letters, for an admin: list them, replay one to its subscription, or discard it; each action audited.

The audit entry (audit.recorded, one trail across services) goes to the outbox in the transaction the
action runs in, so an action without its entry (or the reverse) never commits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from shared.bus.dead_letters import DeadLetter, DeadLetterQuery, DeadLetterStore, parse_dead_letter_id
from shared.bus.events import AuditRecorded
from shared.bus.outbox import add_to_outbox
from shared.db import Database

SERVICE = "platform"
Action = Literal["replay", "discard"]


class NoSuchDeadLetter(LookupError):
    pass


async def list_dead_letters(store: DeadLetterStore, query: DeadLetterQuery) -> list[DeadLetter]:
    return await store.list(query)


async def settle_dead_letter(
    db: Database, store: DeadLetterStore, letter_id: str, action: Action, actor: str
) -> DeadLetter:
    """Replay or discard one dead letter and record who did it; NoSuchDeadLetter if there is none."""
    parsed = parse_dead_letter_id(letter_id)
    if parsed is None:
        raise NoSuchDeadLetter(letter_id)
    async with db.transaction() as conn:
        settle = store.replay if action == "replay" else store.discard
        letter = await settle(parsed, within=conn)
        if letter is None:
            raise NoSuchDeadLetter(letter_id)
        await add_to_outbox(
            conn,
            AuditRecorded(
                audit_id=uuid.uuid4(),
                service=SERVICE,
                at=datetime.now(UTC),
                actor=actor,
                action=f"dead_letter.{action}",
                target_type="dead_letter",
                target_id=letter.id,
                before=_audited(letter),
                after={"state": "replayed" if action == "replay" else "discarded"},
            ),
        )
    return letter


def _audited(letter: DeadLetter) -> dict[str, Any]:
    """What the audit log keeps of a dead letter: enough to find and judge it, not its whole body."""
    return {
        "message_id": letter.message_id,
        "topic": letter.topic,
        "subscription": letter.subscription,
        "subject": letter.subject,
        "reason": letter.reason,
        "description": (letter.description or "")[:500] or None,
        "delivery_count": letter.delivery_count,
    }
