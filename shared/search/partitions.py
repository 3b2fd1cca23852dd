"""Vector partitions: a partial HNSW graph per large category, beside the whole catalogue's graph.

Why: a vector leg filtered on a category walks the whole catalogue's graph and drops what the filter
rejects. At 1M images in 15 categories the filter keeps ~7% of what the walk meets, so pgvector's
iterative scan visits thousands of tuples (ef_search 800) for its 200 candidates: 86% of a
category-filtered hybrid query's time (shared/search/README.md). A graph of that category's images
alone answers the same query as an unfiltered walk over a graph 15x smaller.

Which categories: those holding at least `min_images` images (a small category's graph would cost more
than it saves; its images are still found by the whole graph's filtered walk) and at most half the
catalogue (a filter keeping half loses at most half of what the walk meets; the whole graph serves it).

How the planner finds one: a partial index is used only when the query's own WHERE implies its predicate,
so the vector leg writes a partitioned category as a literal (`category = 'nature'`), never as a bound
parameter (a generic plan cannot prove a predicate from `$1`). Literals come only from the partitions
read back from the catalogue (index comments), quoted as SQL string literals.

Each partition is one index on the serving table, commented `vector partition: <category>`; a full
reindex builds them on its new table before the swap, and `maintain` builds (concurrently) the ones a
live table has grown into and drops those whose category shrank to under half the threshold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

import asyncpg

MARK: Final = "vector partition: "
MAX_SHARE: Final = 0.5


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on since Postgres 9.1: only quotes double)."""
    if "\0" in text:
        raise ValueError("a category cannot hold NUL")
    return "'" + text.replace("'", "''") + "'"


def index_name(table: str, category: str) -> str:
    # Any category text gives a valid, short, stable identifier; the comment keeps the category itself.
    return f"{table}_hnsw_c{hashlib.sha256(category.encode()).hexdigest()[:12]}"


def create_sql(table: str, category: str, *, concurrently: bool = False) -> str:
    how = "concurrently " if concurrently else ""
    return (
        f"create index {how}if not exists {index_name(table, category)} on search.{table}"
        f" using hnsw (embedding halfvec_cosine_ops) with (m = 16, ef_construction = 200)"
        f" where category = {literal(category)}"
    )


async def sizes(conn: asyncpg.Connection, table: str) -> tuple[int, dict[str, int]]:
    """Images with a vector: in all, and per category."""
    rows = await conn.fetch(
        f"select category, count(*) as n from search.{table} where embedding is not null group by category"
    )
    return sum(r["n"] for r in rows), {r["category"]: r["n"] for r in rows if r["category"] is not None}


def wanted(total: int, per_category: dict[str, int], min_images: int) -> set[str]:
    return {c for c, n in per_category.items() if n >= min_images and n <= MAX_SHARE * total}


async def held(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    """The table's valid partitions: category -> index name (a failed concurrent build leaves an invalid one)."""
    rows = await conn.fetch(
        "select c.relname, obj_description(c.oid, 'pg_class') as note, i.indisvalid"
        " from pg_index i join pg_class c on c.oid = i.indexrelid"
        " where i.indrelid = to_regclass($1) and obj_description(c.oid, 'pg_class') like $2",
        f"search.{table}",
        MARK + "%",
    )
    return {r["note"].removeprefix(MARK): r["relname"] for r in rows if r["indisvalid"]}


async def build(conn: asyncpg.Connection, table: str, category: str, *, concurrently: bool, limit_s: float) -> None:
    name = index_name(table, category)
    invalid = await conn.fetchval(
        "select not indisvalid from pg_index where indexrelid = to_regclass($1)", f"search.{name}"
    )
    if invalid:  # a failed concurrent build leaves an invalid index under the name: `if not exists` would keep it
        await conn.execute(f"drop index concurrently if exists search.{name}", timeout=limit_s)
    await conn.execute(create_sql(table, category, concurrently=concurrently), timeout=limit_s)
    await conn.execute(f"comment on index search.{name} is {literal(MARK + category)}")


@dataclass
class Maintained:
    built: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


async def maintain(conn: asyncpg.Connection, table: str, min_images: int, *, limit_s: float) -> Maintained:
    """Build the partitions the live table now wants (concurrently: writes go on), drop the ones whose
    category fell under half the threshold (or past half the catalogue): hysteresis, so a category
    hovering at the threshold is not built and dropped by turns. Call outside a transaction."""
    total, per_category = await sizes(conn, table)
    have = await held(conn, table)
    result = Maintained()
    for category in sorted(wanted(total, per_category, min_images) - have.keys()):
        await build(conn, table, category, concurrently=True, limit_s=limit_s)
        result.built.append(category)
    for category, name in sorted(have.items()):
        n = per_category.get(category, 0)
        if n < min_images / 2 or n > MAX_SHARE * total:
            await conn.execute(f"drop index concurrently if exists search.{name}", timeout=limit_s)
            result.dropped.append(category)
        else:
            result.kept.append(category)
    return result
