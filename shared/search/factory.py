"""Picks the serving-index adapter from SEARCH_BACKEND."""

from __future__ import annotations

from shared.config import Settings
from shared.db import Database
from shared.search.port import SearchIndex


def build_search_index(settings: Settings, db: Database) -> SearchIndex:
    if settings.SEARCH_BACKEND == "azure":
        # Imported here: the Azure SDK is only loaded where it is used.
        from shared.search.azure_ai_search import AzureAISearchIndex

        return AzureAISearchIndex.from_settings(settings, dimension=settings.ML_EMBEDDING_DIM)
    from shared.search.postgres import PostgresSearchIndex

    return PostgresSearchIndex(
        db,
        dimension=settings.ML_EMBEDDING_DIM,  # the embedding model's, checked against it when the model loads
        ef_search=settings.SEARCH_HNSW_EF_SEARCH,
        ef_search_filtered=settings.SEARCH_HNSW_EF_SEARCH_FILTERED,
        ef_search_partition=settings.SEARCH_HNSW_EF_SEARCH_PARTITION,
        max_scan_tuples=settings.SEARCH_HNSW_MAX_SCAN_TUPLES,
        build_memory_mb=settings.SEARCH_REINDEX_BUILD_MEMORY_MB,
        safe_max_score=settings.SEARCH_SAFE_MAX_SCORE,
        keyword_match_cap=settings.SEARCH_KEYWORD_MATCH_CAP,
        vector_partition_min_images=settings.SEARCH_VECTOR_PARTITION_MIN_IMAGES,
        counted_min_widths=settings.SEARCH_COUNTED_MIN_WIDTHS,
    )


_index: tuple[object, SearchIndex] | None = None  # (the runtime it was built for, the index)


async def get_search_index() -> SearchIndex:
    """The process's serving index, built on first use from the runtime (ready to query)."""
    global _index
    from shared.runtime import get_runtime

    runtime = await get_runtime()
    if _index is None or _index[0] is not runtime:
        index = build_search_index(runtime.settings, runtime.db)
        await index.ensure_ready()
        _index = (runtime, index)
    return _index[1]
