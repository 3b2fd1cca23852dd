"""Vector partitions: a partial HNSW graph per large category or license type, beside the whole graph.

Why: a vector leg filtered on a category walks the whole catalogue's graph and drops what the filter
rejects. At 1M images in 15 categories the filter keeps ~7% of what the walk meets, so pgvector's
iterative scan visits thousands of tuples (ef_search 800) for its 200 candidates: 86% of a
category-filtered hybrid query's time (shared/search/README.md). A graph of that category's images
alone answers the same query as an unfiltered walk over a graph 15x smaller.

The same holds for the license type (2026-12-07): editorial images are 15% of the catalogue, and an
editorial filter with a size left a 29 ms vector leg at 1M (20 ms through its graph). A partition is
keyed by (column, value) over COLUMNS; a query filtered on several partitioned values walks the smallest
of their graphs (the most selective; the planner, costing them, agrees). Orientation was tried and
measured slower (portrait + a colour: 50 -> 84 ms): a colour filter still narrows a portrait graph to a
fraction, so the walk stays as wide while another 320 MB graph competes for the buffers; a held
orientation partition is dropped by the next `maintain`.

Which values: those holding at least `min_images` images (a small value's graph would cost more than it
saves; its images are still found by the whole graph's filtered walk) and at most half the catalogue (a
filter keeping half loses at most half of what the walk meets; the whole graph serves it).

How the planner finds one: a partial index is used only when the query's own WHERE implies its predicate,
so the vector leg writes a partitioned category as a literal (`category = 'nature'`), never as a bound
parameter (a generic plan cannot prove a predicate from `$1`). Literals come only from the partitions
read back from the catalogue (index comments), quoted as SQL string literals.

Each partition is one index on the serving table, commented `vector partition: <category>` or
`vector partition (<column>): <value>` for the other columns; a full
reindex builds them on its new table before the swap, and `maintain` builds (concurrently) the ones a
live table has grown into and drops those whose value shrank to under half the threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import asyncpg

MARK: Final = "vector partition: "  # a category's (the first partitions' comment, kept as it was)
MAX_SHARE: Final = 0.5
# The serving table's columns a partition is keyed on; KNOWN: also those it once was (their notes are read
# back, so `maintain` drops them).
COLUMNS: Final = ("category", "usage")
KNOWN: Final = (*COLUMNS, "orientation")
Key = tuple[str, str]  # (column, value)


def note(key: Key) -> str:
    column, value = key
    return MARK + value if column == "category" else f"vector partition ({column}): {value}"


def parse_note(text: str) -> Key | None:
    for column in KNOWN:
        prefix = note((column, ""))
        if text.startswith(prefix):
            return column, text.removeprefix(prefix)
    return None


def label(key: Key) -> str:
    """How a partition is named in `maintain`'s report: a category by itself, another column's value with it."""
    column, value = key
    return value if column == "category" else f"{column}: {value}"


def choose(filters: object, held: Mapping[Key, Held]) -> Key | None:
    """The partition a query filtered this way walks, if one is held: the smallest of those its filters
    match (getattr: SearchFilters' columns)."""
    matching = [(column, getattr(filters, column)) for column in COLUMNS]
    return min((k for k in matching if k in held), key=lambda k: (held[k].images, k), default=None)


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on since Postgres 9.1: only quotes double)."""
    if "\0" in text:
        raise ValueError("a partition value cannot hold NUL")
    return "'" + text.replace("'", "''") + "'"


def index_name(table: str, key: Key) -> str:
    # Any value gives a valid, short, stable identifier; the comment keeps the value itself.
    column, value = key
    if column == "category":  # the first partitions' names, kept as they were
        return f"{table}_hnsw_c{hashlib.sha256(value.encode()).hexdigest()[:12]}"
    return f"{table}_hnsw_{column[0]}{hashlib.sha256(f'{column}:{value}'.encode()).hexdigest()[:12]}"


def create_sql(table: str, key: Key, *, concurrently: bool = False) -> str:
    how = "concurrently " if concurrently else ""
    column, value = key
    assert column in KNOWN
    return (
        f"create index {how}if not exists {index_name(table, key)} on search.{table}"
        f" using hnsw (embedding halfvec_cosine_ops) with (m = 16, ef_construction = 200)"
        f" where {column} = {literal(value)}"
    )


async def sizes(conn: asyncpg.Connection, table: str) -> tuple[int, dict[Key, int]]:
    """Images with a vector: in all, and per value of each partition column."""
    rows = await conn.fetch(
        f"select {', '.join(COLUMNS)}, grouping({', '.join(COLUMNS)}) as g, count(*) as n from search.{table}"
        f" where embedding is not null group by grouping sets ({', '.join(f'({c})' for c in COLUMNS)}, ())"
    )
    total, per_key = 0, {}
    for r in rows:
        if r["g"] == 2 ** len(COLUMNS) - 1:  # the empty grouping set: every image
            total = r["n"]
            continue
        for column in COLUMNS:
            if r[column] is not None:
                per_key[(column, r[column])] = r["n"]
    return total, per_key


def wanted(total: int, per_key: dict[Key, int], min_images: int) -> set[Key]:
    return {k for k, n in per_key.items() if n >= min_images and n <= MAX_SHARE * total}


@dataclass(frozen=True)
class Held:
    name: str
    images: float  # its size as the catalogue last counted it (pg_class.reltuples: set by the build, then by vacuum)


async def held(conn: asyncpg.Connection, table: str) -> dict[Key, Held]:
    """The table's valid partitions (a failed concurrent build leaves an invalid one)."""
    rows = await conn.fetch(
        "select c.relname, c.reltuples, obj_description(c.oid, 'pg_class') as note, i.indisvalid"
        " from pg_index i join pg_class c on c.oid = i.indexrelid"
        " where i.indrelid = to_regclass($1) and obj_description(c.oid, 'pg_class') like 'vector partition%'",
        f"search.{table}",
    )
    found = [(parse_note(r["note"]), Held(r["relname"], r["reltuples"])) for r in rows if r["indisvalid"]]
    return {key: h for key, h in found if key is not None}


async def build(conn: asyncpg.Connection, table: str, key: Key, *, concurrently: bool, limit_s: float) -> None:
    name = index_name(table, key)
    invalid = await conn.fetchval(
        "select not indisvalid from pg_index where indexrelid = to_regclass($1)", f"search.{name}"
    )
    if invalid:  # a failed concurrent build leaves an invalid index under the name: `if not exists` would keep it
        await conn.execute(f"drop index concurrently if exists search.{name}", timeout=limit_s)
    await conn.execute(create_sql(table, key, concurrently=concurrently), timeout=limit_s)
    await conn.execute(f"comment on index search.{name} is {literal(note(key))}")


@dataclass
class Maintained:
    built: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


async def maintain(conn: asyncpg.Connection, table: str, min_images: int, *, limit_s: float) -> Maintained:
    """Build the partitions the live table now wants (concurrently: writes go on), drop the ones whose
    value fell under half the threshold (or past half the catalogue): hysteresis, so a value hovering at
    the threshold is not built and dropped by turns. Call outside a transaction."""
    total, per_key = await sizes(conn, table)
    have = await held(conn, table)
    result = Maintained()
    for key in sorted(wanted(total, per_key, min_images) - have.keys()):
        await build(conn, table, key, concurrently=True, limit_s=limit_s)
        result.built.append(label(key))
    for key, partition in sorted(have.items()):
        n = per_key.get(key, 0)
        if n < min_images / 2 or n > MAX_SHARE * total or key[0] not in COLUMNS:
            await conn.execute(f"drop index concurrently if exists search.{partition.name}", timeout=limit_s)
            result.dropped.append(label(key))
        else:
            result.kept.append(label(key))
    return result
