"""bench/statement_log.py reads the embedded server's statement log: what each logged line counts as."""

from bench.statement_log import summarise

SEARCH = [
    "with kw as materialized (select 1",
    "\t  from search.serving_index s where {where})",
    "\tselect jsonb_build_object('total', 1)::text as result",
]


def logged(pid: int, ms: float, what: str, sql: list[str]) -> list[str]:
    return [f"2026-12-07 22:28:19.004 UTC [{pid}] LOG:  duration: {ms:.3f} ms  {what}: {sql[0]}", *sql[1:]]


def search(where: str) -> list[str]:
    return [line.format(where=where) for line in SEARCH]


LOG = [
    *logged(6605, 0.7, "parse __asyncpg_stmt_1__", search("s.category = 'food'")),
    *logged(6605, 1.0, "bind __asyncpg_stmt_1__", search("s.category = 'food'")),
    *logged(6605, 30.0, "execute __asyncpg_stmt_1__", search("s.category = 'food'")),
    *logged(6606, 10.0, "execute __asyncpg_stmt_2__", search("true")),
    *logged(6606, 0.1, "statement", ["set hnsw.iterative_scan = relaxed_order; set hnsw.ef_search = 200"]),
    *logged(6607, 0.2, "execute __asyncpg_stmt_3__", ["select value from search.generation"]),
    "2026-12-07 22:28:19.093 UTC [6607] LOG:  checkpoint starting: time",
]


def test_statements_are_summed_by_kind_and_search_statements_by_filter_shape():
    summary = summarise(LOG)

    assert summary["statements"] == 6  # the checkpoint line is no statement
    shares = summary["share_by_statement"]
    assert shares["search statement (execute)"].startswith("95.2% (2,")  # 40 of 42 ms
    assert shares["search statement (bind)"].startswith("2.4% (1,")
    assert "vector leg settings (SET)" in shares
    assert "index generation read" in shares
    by_filter = summary["search_statements_by_filter"]
    assert by_filter["category"] == "75.0% of their time (1, mean 30.0 ms)"
    assert by_filter["none (safe search only)"] == "25.0% of their time (1, mean 10.0 ms)"
    assert summary["search_statement_ms"]["p50"] == 30.0


def test_an_empty_window_summarises_to_nothing_logged():
    summary = summarise([])
    assert summary["statements"] == 0
    assert "search_statement_ms" not in summary
