"""The serving index's change log (search.changes, migration 0021), read by the result cache.

Statement triggers on the local serving table log each written or deleted row, before and after, with
what decides whether it matches a query; `bump_generation(scope="images")` stamps the transaction's rows
with the generation it moves to (or writes a 'none' row if its writes changed no row); any other step (a
price change, a reindex swap, a write to Azure AI Search, whose index logs nothing) writes an 'all' row.
So every generation step has rows, and the steps a reader gets are either complete or known to be
missing (then: drop everything).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

import asyncpg
import numpy as np

from shared.db import Database
from shared.search.matching import ImageState, MatchRule, Node, half, parse_tsquery, rule_legs
from shared.search.port import SearchQuery

_TRIGGERS: Final = {
    "changes_ins": "after insert on search.{t} referencing new table as new_rows",
    "changes_upd": "after update on search.{t} referencing old table as old_rows new table as new_rows",
    "changes_del": "after delete on search.{t} referencing old table as old_rows",
}


async def attach_change_log(conn: asyncpg.Connection, table: str) -> None:
    """Log the table's writes from now on (attach after a bulk load: its rows are no change to log)."""
    for name, event in _TRIGGERS.items():
        await conn.execute(f"drop trigger if exists {name} on search.{table}")
        await conn.execute(
            f"create trigger {name} {event.format(t=table)} for each statement execute function"
            " search.log_serving_changes()"
        )


async def has_change_log(conn: asyncpg.Connection, table: str) -> bool:
    return bool(
        await conn.fetchval(
            "select count(*) = $2 from pg_trigger where tgrelid = to_regclass($1) and tgname = any($3::text[])",
            f"search.{table}",
            len(_TRIGGERS),
            list(_TRIGGERS),
        )
    )


@dataclass(frozen=True)
class Step:
    """One generation step: the image states it changed (each side of each row), or None: anything."""

    generation: int
    images: tuple[ImageState, ...] | None


_READ: Final = """
select generation, kind, lexemes, embedding::real[] as embedding, category, orientation, colors, contributor_id,
       usage, safety_score, width, height, added_at
from search.changes where generation > $1 and generation <= $2 order by generation, id limit $3
"""


def _state(row: asyncpg.Record) -> ImageState:
    embedding = row["embedding"]
    return ImageState(
        lexemes=frozenset(row["lexemes"] or ()),
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        category=row["category"],
        orientation=row["orientation"],
        colors=tuple(row["colors"] or ()),
        contributor_id=row["contributor_id"],
        usage=row["usage"],
        safety_score=row["safety_score"],
        width=row["width"],
        height=row["height"],
        added_at=row["added_at"],
    )


class ChangeReader:
    """The steps after one generation up to another, from search.changes. Too many steps or rows, or a
    step with no rows (pruned), come back as one step that changes anything."""

    def __init__(self, db: Database, *, max_steps: int = 2000, max_rows: int = 20_000) -> None:
        self.db, self.max_steps, self.max_rows = db, max_steps, max_rows
        self.reads = 0

    async def steps(self, after: int, upto: int) -> list[Step]:
        if upto <= after:
            return []
        if upto - after > self.max_steps:
            return [Step(upto, None)]
        self.reads += 1
        async with self.db.connection() as conn:
            rows = await conn.fetch(_READ, after, upto, self.max_rows + 1)
        if len(rows) > self.max_rows:
            return [Step(upto, None)]
        by_step: dict[int, list[asyncpg.Record]] = {}
        for row in rows:
            by_step.setdefault(row["generation"], []).append(row)
        if len(by_step) != upto - after:  # a step without rows: pruned, or from before the log
            return [Step(upto, None)]
        return [
            Step(
                g,
                None
                if any(r["kind"] == "all" for r in found)
                else tuple(_state(r) for r in found if r["kind"] == "image"),
            )
            for g, found in sorted(by_step.items())
        ]


class RuleBuilder:
    """A query's MatchRule, with its words normalised by Postgres exactly as the keyword leg does
    (postgres.py: `websearch_to_tsquery('english', q)`), once per distinct text per instance."""

    def __init__(self, db: Database, cache_size: int = 20_000) -> None:
        self.db, self.cache_size = db, cache_size
        self._parsed: OrderedDict[str, Node] = OrderedDict()

    async def rule(self, query: SearchQuery) -> MatchRule:
        use_text, use_vector = rule_legs(query)
        return MatchRule(
            filters=query.filters,
            text=await self.tsquery(query.text or "") if use_text else None,
            vector=half(query.vector) if use_vector and query.vector is not None else None,
            max_distance=query.max_vector_distance,
        )

    async def tsquery(self, text: str) -> Node:
        node = self._parsed.get(text)
        if node is None:
            async with self.db.connection() as conn:
                node = parse_tsquery(await conn.fetchval("select websearch_to_tsquery('english', $1)::text", text))
            self._parsed[text] = node
            if len(self._parsed) > self.cache_size:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(text)
        return node
