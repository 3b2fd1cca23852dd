"""The serving table's name and the SQL of a query's filters, shared by its queries and its kept counts."""

from __future__ import annotations

from typing import Any, Final

from shared.search import partitions
from shared.search.port import SearchFilters

TABLE: Final = "serving_index"
# An index build over millions of rows takes minutes: far beyond any query's client-side timeout.
BUILD_TIMEOUT_SECONDS: Final = 6 * 3600


class Params:
    """Positional parameters for one statement: `p.add(value)` returns its placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def where_sql(f: SearchFilters, p: Params, *, partition: str | None = None, opaque: bool = False) -> str:
    """How a partition column (category, license type) is written decides which vector partition
    the planner may use (shared/search/partitions.py): a literal (`partition`: the column whose graph this
    query walks) always matches its partition's predicate; a parameter does under a custom plan, not a generic
    one; `opaque` (an uncorrelated sub-select) never does: partitions turned off, the whole graph as before."""

    def value(column: str, v: str) -> str:
        if column == partition:
            return partitions.literal(v)
        return f"(select {p.add(v)}::text)" if opaque else p.add(v)

    clauses = ["true"]
    if f.category is not None:
        clauses.append(f"s.category = {value('category', f.category)}")
    if f.orientation is not None:
        clauses.append(f"s.orientation = {p.add(f.orientation)}")
    if f.color is not None:
        clauses.append(f"s.colors @> array[{p.add(f.color)}::text]")
    if f.contributor_id is not None:
        clauses.append(f"s.contributor_id = {p.add(f.contributor_id)}")
    if f.usage is not None:
        clauses.append(f"s.usage = {value('usage', f.usage)}")
    if f.max_safety_score is not None:
        clauses.append(f"s.safety_score < {p.add(f.max_safety_score)}::real")
    if f.min_width is not None:
        clauses.append(f"s.width >= {p.add(f.min_width)}")
    if f.min_height is not None:
        clauses.append(f"s.height >= {p.add(f.min_height)}")
    if f.added_after is not None:
        clauses.append(f"s.added_at > {p.add(f.added_after)}")
    if f.exclude_ids:
        clauses.append(f"s.image_id <> all({p.add(list(f.exclude_ids))}::uuid[])")
    if f.exclude_phashes:
        clauses.append(f"s.phash <> all({p.add(list(f.exclude_phashes))}::text[])")
    return " and ".join(clauses)


def narrowing(f: SearchFilters, *, partition: str | None = None) -> bool:
    """A filter that keeps a small part of the images (safe search and exclusions keep nearly all).
    `partition`: the column whose graph the query walks, whose every image passes that column's filter."""
    columns = ("category", "orientation", "color", "contributor_id", "usage", "min_width", "min_height", "added_after")
    return any(getattr(f, c) is not None for c in columns if c != partition)
