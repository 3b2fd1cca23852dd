"""The dead-letter store: messages a subscription gave up on, for an operator to read, replay or discard.

Both transports dead-letter with a reason (MaxDeliveryCountExceeded with the last handler error,
InvalidBody, or a handler's own reason). This port lists them across subscriptions and acts on one:
replay puts it back in front of its own subscription only (no other subscriber sees it twice) with
a fresh delivery count; discard deletes it. A dead letter's id is `topic:subscription:sequence`,
the same shape on both transports.

The Postgres store acts inside the caller's transaction (`within`), so an admin route commits the
action and its audit entry together; Service Bus settles on the broker, which no database
transaction spans (there the audit entry is written right after the broker accepted the action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from shared.bus.postgres_transport import NOTIFY_CHANNEL, dead_letter_fields
from shared.bus.topology import TOPICS

# Set on a replayed message's copy so that only the subscription it is replayed to receives it
# (Service Bus: each subscription's SQL filter also requires `replay_to IS NULL OR replay_to = '<name>'`).
REPLAY_TO_PROPERTY = "replay_to"
REPLAY_OF_PROPERTY = "replay_of"

_ID = re.compile(r"^(?P<topic>[a-z0-9-]{1,50}):(?P<subscription>[a-z0-9-]{1,50}):(?P<seq>[0-9]{1,19})$")


@dataclass(frozen=True)
class DeadLetter:
    id: str  # topic:subscription:sequence
    topic: str
    subscription: str
    message_id: str
    subject: str
    body: dict[str, Any]
    correlation_id: str | None
    application_properties: dict[str, Any]
    delivery_count: int
    enqueued_time: datetime
    dead_lettered_time: datetime | None
    reason: str | None
    description: str | None


@dataclass(frozen=True)
class DeadLetterQuery:
    topic: str | None = None
    subscription: str | None = None
    subject: str | None = None
    reason: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class DeadLetterId:
    topic: str
    subscription: str
    sequence: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.subscription}:{self.sequence}"


def parse_dead_letter_id(value: str) -> DeadLetterId | None:
    """The parts of an id naming a declared subscription; None for anything else."""
    match = _ID.fullmatch(value)
    if match is None:
        return None
    topic = TOPICS.get(match["topic"])
    if topic is None or match["subscription"] not in {s.name for s in topic.subscriptions}:
        return None
    sequence = int(match["seq"])
    return DeadLetterId(match["topic"], match["subscription"], sequence) if sequence < 2**63 else None


def subscriptions_matching(query: DeadLetterQuery) -> list[tuple[str, str]]:
    """The declared (topic, subscription) pairs a query covers."""
    return [
        (t.name, s.name)
        for t in TOPICS.values()
        if query.topic in (None, t.name)
        for s in t.subscriptions
        if query.subscription in (None, s.name)
    ]


class DeadLetterStore(Protocol):
    async def list(self, query: DeadLetterQuery) -> list[DeadLetter]:
        """Dead letters matching every given filter, oldest dead-lettered first, at most query.limit."""

    async def replay(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        """Deliver it again to its own subscription, delivery count reset; None if no such dead letter."""

    async def discard(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        """Delete it for good; None if no such dead letter."""


# --- Postgres ---------------------------------------------------------------------------------

_COLUMNS = """seq, topic, subscription, message_id, subject, body::text as body, correlation_id,
    application_properties::text as application_properties, delivery_count, enqueued_at, dead_lettered_at,
    dead_letter_reason, dead_letter_description"""

_LIST = f"""
select {_COLUMNS}
from bus.messages
where state = 'deadlettered'
  and ($1::text is null or topic = $1) and ($2::text is null or subscription = $2)
  and ($3::text is null or subject = $3) and ($4::text is null or dead_letter_reason = $4)
order by dead_lettered_at, seq
limit $5
"""

# Back to the head of its own subscription (the row is that subscription's copy), as if newly sent.
_REPLAY = f"""
with replayed as (
    update bus.messages
    set state = 'active', delivery_count = 0, visible_at = now(), lock_token = null, locked_until = null,
        dead_lettered_at = null, dead_letter_reason = null, dead_letter_description = null, last_error = null
    where seq = $1 and topic = $2 and subscription = $3 and state = 'deadlettered'
    returning *
),
before as (
    select {_COLUMNS} from bus.messages
    where seq = $1 and topic = $2 and subscription = $3 and state = 'deadlettered'
)
select before.*, pg_notify('{NOTIFY_CHANNEL}', $2 || '/' || $3) from before join replayed using (seq)
"""

_DISCARD = f"""
delete from bus.messages
where seq = $1 and topic = $2 and subscription = $3 and state = 'deadlettered'
returning {_COLUMNS}
"""


class PostgresDeadLetters:
    """The dead-letter store of the Postgres transport: its `deadlettered` rows in bus.messages."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(self, query: DeadLetterQuery) -> list[DeadLetter]:
        rows = await self._pool.fetch(_LIST, query.topic, query.subscription, query.subject, query.reason, query.limit)
        return [_from_row(r) for r in rows]

    async def replay(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        row = await within.fetchrow(_REPLAY, letter_id.sequence, letter_id.topic, letter_id.subscription)
        return None if row is None else _from_row(row)

    async def discard(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        row = await within.fetchrow(_DISCARD, letter_id.sequence, letter_id.topic, letter_id.subscription)
        return None if row is None else _from_row(row)


def _from_row(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(id=str(DeadLetterId(row["topic"], row["subscription"], row["seq"])), **dead_letter_fields(row))
