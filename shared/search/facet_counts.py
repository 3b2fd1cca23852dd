"""Facet counts kept by the serving table's writes (infra/sql/0016_search_facet_counts.sql, 0022 for sizes), and
browse's counts.

Browse (no words) takes its total and facets from `search.facet_counts` when its filters are the
low-cardinality ones or a minimum width at one of the kept width classes (`counted`), else from one pass over
the narrow facets index (`scan_counts_sql`);
`from_counts` turns either's rows into the API's total and facets. See shared/search/README.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from shared.search.pg_sql import BUILD_TIMEOUT_SECONDS, TABLE, Params, where_sql
from shared.search.port import FacetCount, SearchFilters

FACET_TRIGGERS: Final = {
    "facet_counts_ins": "after insert on search.{t} referencing new table as new_rows",
    "facet_counts_upd": "after update on search.{t} referencing old table as old_rows new table as new_rows",
    "facet_counts_del": "after delete on search.{t} referencing old table as old_rows",
    "facet_counts_trunc": "after truncate on search.{t}",
}


@dataclass(frozen=True)
class Split:
    """What the kept counts are split by besides the facets: safe search's threshold, and the minimum widths
    (ascending) whose width classes they keep (the portal's size presets, SEARCH_COUNTED_MIN_WIDTHS)."""

    threshold: float
    widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "widths", tuple(sorted({int(w) for w in self.widths})))

    def counted(self, f: SearchFilters) -> bool:
        """Whether the kept counts answer these filters (the low-cardinality ones, and a kept minimum width)."""
        return (
            f.contributor_id is None
            and (f.min_width is None or f.min_width in self.widths)
            and f.min_height is None
            and f.added_after is None
            and not f.exclude_ids
            and not f.exclude_phashes
            and (f.max_safety_score is None or float(f.max_safety_score) == self.threshold)
        )

    def trigger_args(self) -> str:
        return f"'{self.threshold!r}', '{{{','.join(map(str, self.widths))}}}'"


async def kept_split(conn: asyncpg.Connection, table: str) -> Split | None:
    """What the table's kept counts are split by (None: not kept)."""
    args = await conn.fetchval(
        "select tgargs from pg_trigger where tgrelid = to_regclass($1) and tgname = 'facet_counts_ins'",
        f"search.{table}",
    )
    if not args:
        return None
    threshold, *rest = bytes(args).decode().split("\0")[:-1]
    widths = rest[0].strip("{}") if rest else ""
    return Split(float(threshold), tuple(int(w) for w in widths.split(",") if w))


async def attach_facet_counts(conn: asyncpg.Connection, table: str, split: Split) -> None:
    """Count the table's rows into search.facet_counts and keep them counted (call with writes held off)."""
    for name in FACET_TRIGGERS:
        await conn.execute(f"drop trigger if exists {name} on search.{table}")
    await conn.execute("delete from search.facet_counts where relid = $1::regclass", f"search.{table}")
    await conn.execute(
        f"""insert into search.facet_counts (relid, category, orientation, usage, safe, size, color_a, color_b, n)
        select $1::regclass, category, orientation, usage, safe, size, a, b, count(*) from (
          select s.category, s.orientation, s.usage, s.safety_score < $2::real as safe,
                 width_bucket(s.width, $3::int[]) as size, null::text as a, null::text as b
          from search.{table} s
          union all
          select s.category, s.orientation, s.usage, s.safety_score < $2::real, width_bucket(s.width, $3::int[]),
                 ca.a, cb.b
          from search.{table} s,
               lateral (select distinct unnest(s.colors)) ca(a), lateral (select distinct unnest(s.colors)) cb(b)
        ) r group by category, orientation, usage, safe, size, a, b""",
        f"search.{table}",
        split.threshold,
        list(split.widths),
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    for name, event in FACET_TRIGGERS.items():
        await conn.execute(
            f"create trigger {name} {event.format(t=table)} for each statement"
            f" execute function search.facet_counts_delta({split.trigger_args()})"
        )


def counts_sql(f: SearchFilters, p: Params, split: Split) -> str:
    """The kept counts' rows for filters `split.counted` accepts."""
    clauses = [f"relid = to_regclass('search.{TABLE}')"]
    for column, value in (("category", f.category), ("orientation", f.orientation), ("usage", f.usage)):
        if value is not None:
            clauses.append(f"{column} = {p.add(value)}")
    if f.min_width is not None:  # at a breakpoint: its width class and those above
        clauses.append(f"size >= {p.add(split.widths.index(f.min_width) + 1)}")
    if f.max_safety_score is not None:
        clauses.append("safe")
    # Without a colour filter: the image rows and the (a, a) rows; with one: the pairs starting at it.
    clauses.append(f"kind > 0 and color_a = {p.add(f.color)}" if f.color is not None else "kind < 2")
    return (
        "select category, orientation, usage, color_a, color_b, sum(n)::bigint as n from search.facet_counts"
        f" where {' and '.join(clauses)} group by 1, 2, 3, 4, 5 having sum(n) <> 0"
    )


def scan_counts_sql(f: SearchFilters, p: Params) -> str:
    """The filtered images counted in the shape of the kept counts' rows, reading only the facets index's
    columns: grouped first by (category, orientation, license, colour set), a few thousand groups, whose
    colours are then expanded (colour pairs only where a colour filter needs them)."""
    where = where_sql(f, p)
    color_a = f"{p.add(f.color)}::text" if f.color is not None else "c"
    return f"""with g as (
          select s.category, s.orientation, s.usage, s.colors, count(*) as n
          from search.{TABLE} s where {where} group by 1, 2, 3, 4)
        select category, orientation, usage, null::text as color_a, null::text as color_b, sum(n)::bigint as n
        from g group by 1, 2, 3
        union all
        select category, orientation, usage, {color_a}, c, sum(n)::bigint
        from (select category, orientation, usage, n, unnest(colors) as c from g) u group by 1, 2, 3, 4, 5"""


def from_counts(
    rows: Sequence[asyncpg.Record], color: str | None, size: int
) -> tuple[int, dict[str, list[FacetCount]]]:
    per: dict[str, dict[str, int]] = {field: {} for field in ("category", "orientation", "usage", "colors")}
    total = 0
    for row in rows:
        a, b, n = row["color_a"], row["color_b"], row["n"]
        if (a is None) if color is None else (a == color == b):  # one row per image
            total += n
            for field in ("category", "orientation", "usage"):
                if row[field] is not None:
                    per[field][row[field]] = per[field].get(row[field], 0) + n
        if a is not None and (a == b if color is None else a == color):
            per["colors"][b] = per["colors"].get(b, 0) + n
    facets = {
        field: [FacetCount(value=v, count=n) for v, n in sorted(counts.items(), key=lambda vn: (-vn[1], vn[0]))[:size]]
        for field, counts in per.items()
        if counts
    }
    return total, facets
