"""Inbox: makes a consumer idempotent. The bus delivers at least once; effects must happen once.

A handler claims the message_id in the same transaction as its effects; if the
claim fails, the message was already handled (a redelivery) and it does nothing.
"""

from __future__ import annotations

import asyncpg

# The schemas that own an inbox table (infra/sql/0001_extensions_and_schemas.sql). The name is
# interpolated into SQL, so only these are accepted.
INBOX_SCHEMAS = frozenset({"platform", "ingestion", "processing", "moderation", "search", "checkout", "payouts"})


async def claim_message(conn: asyncpg.Connection, schema: str, subscription: str, message_id: str) -> bool:
    """Record message_id as handled by `subscription`; False if it already was.

    Call inside the transaction that applies the handler's effects. A concurrent
    delivery of the same message waits on the first one's row and then gets False.
    """
    if schema not in INBOX_SCHEMAS:
        raise ValueError(f"no inbox in schema {schema!r}; expected one of {sorted(INBOX_SCHEMAS)}")
    claimed = await conn.fetchval(
        f"insert into {schema}.inbox (subscription, message_id) values ($1, $2) "
        "on conflict (subscription, message_id) do nothing returning true",
        subscription,
        message_id,
    )
    return claimed is True
