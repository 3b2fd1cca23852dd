"""Relevance on real photos the models were never tuned on: MRR and recall@5 per mode, both halves, and the floor.

Each labelled photo (bench/relevance_set.py) goes through the real pipeline code with a neutral title
and no keywords: processing's `render_and_describe` (decode at preview size, renditions, colours) and
the configured image analyzer, processing's `build_listing`, an `image.approved` applied by search_sync's
handler into the serving index (embedded Postgres + pgvector), then every query through search_api's
`search_images` handler with the settings' tuning (relevance floor, candidates) in each mode.
So only the pipeline's own tags and vectors can find a photo.

Prints, per split (tune / held-out) and mode (keyword, semantic, hybrid): MRR (reciprocal rank of the
right photo in the first page of 24, 0 when absent) and recall@5; then the queries each mode misses
(right photo not first). The floor: nonsense queries must return nothing, and every labelled query
must still return its photo somewhere in hybrid mode. `--split tune` hides the held-out half's misses
(for tuning); the summary always shows both halves.

    .venv/bin/python -m bench.relevance [--split tune|all]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image

from bench._support import fresh_database, on_embedded_postgres
from bench.relevance_set import NONSENSE, LabelledPhoto, labelled_photos
from functions.processing.handlers import build_listing
from functions.processing.work import ProcessingOptions, render_and_describe
from functions.search_api.handlers import PriceBook, QueryEmbedder, SearchTuning, search_images
from functions.search_api.models import SearchParams
from functions.search_sync.handlers import apply_event
from shared.bus.events import ImageApproved, ImageUploaded, Sidecar
from shared.config import get_settings
from shared.ml import get_image_analyzer, get_text_encoder
from shared.search.factory import build_search_index

MODES = ("keyword", "semantic", "hybrid")
PAGE = 24


class _Urls:
    """Rendition URLs for the listing; the renditions themselves are not stored by this bench."""

    def public_url(self, container: str, name: str) -> str:
        return f"http://bench/{container}/{name}"


def _jpeg(photo: LabelledPhoto) -> bytes:
    with Image.open(photo.path()) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=92)
        return out.getvalue()


@dataclass
class Outcome:
    photo: LabelledPhoto
    query: str
    mode: str
    rank: int | None  # 1-based rank in the first page, None when absent
    total: int


def processed_listing(photo: LabelledPhoto, number: int, options: ProcessingOptions):
    data = _jpeg(photo)
    work = render_and_describe(data, options)
    analysis = get_image_analyzer().analyze([work.analysis_input])[0]
    uploaded = ImageUploaded(
        image_id=uuid.uuid4(),
        contributor_id="bench",
        original_blob=f"bench/{number}",
        content_type="image/jpeg",
        size_bytes=len(data),
        sha256="0" * 64,
        sidecar=Sidecar(title=f"IMG_{number:04d}"),  # neutral: no words that describe the photo
    )
    return uploaded, build_listing(uploaded, work, analysis, _Urls(), datetime.now(UTC))


async def run(admin_dsn: str, split_shown: str) -> dict:
    settings = get_settings()
    db = await fresh_database(admin_dsn, "bench_relevance", min_size=1, max_size=4)
    index = build_search_index(settings, db)
    await index.ensure_ready()
    photos = labelled_photos()
    options = ProcessingOptions.from_settings(settings)

    started = time.perf_counter()
    ids: dict[uuid.UUID, LabelledPhoto] = {}
    tags: dict[str, list[str]] = {}
    for number, photo in enumerate(photos, 1):
        uploaded, listing = await asyncio.to_thread(processed_listing, photo, number, options)
        event = ImageApproved(
            image_id=uploaded.image_id,
            contributor_id="bench",
            revision=2,
            approved_at=datetime.now(UTC),
            original_blob=uploaded.original_blob,
            listing=listing,
        )
        async with db.transaction() as conn:
            await apply_event(conn, index, event)
        ids[uploaded.image_id] = photo
        tags[photo.name] = [f"{t.label} {t.confidence:.2f}" for t in listing.tags[:4]]
    ingest_s = time.perf_counter() - started

    embedder = QueryEmbedder(get_text_encoder())
    prices = PriceBook(db)
    tuning = SearchTuning(
        candidates=settings.SEARCH_VECTOR_CANDIDATES,
        max_vector_distance=settings.SEARCH_MAX_VECTOR_DISTANCE,
        safe_max_score=settings.SEARCH_SAFE_MAX_SCORE,
    )

    async def ask(q: str, mode: str):
        out = await search_images(index, embedder, prices, tuning, SearchParams(q=q, mode=mode, per_page=PAGE))
        return [ids[item.id] for item in out.items], out.total

    outcomes: list[Outcome] = []
    for photo in photos:
        for query in photo.queries:
            for mode in MODES:
                found, total = await ask(query, mode)
                rank = next((i for i, p in enumerate(found, 1) if p is photo), None)
                outcomes.append(Outcome(photo, query, mode, rank, total))
    nonsense = {(q, mode): (await ask(q, mode))[1] for q in NONSENSE for mode in MODES}

    # The floor's trade-off on this set: labelled queries whose photo is still returned (semantic leg)
    # against results for nonsense, at the configured floor and around it.
    sweep = []
    for floor in sorted({0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, settings.SEARCH_MAX_VECTOR_DISTANCE}):
        tuning_at = SearchTuning(
            candidates=tuning.candidates, max_vector_distance=floor, safe_max_score=tuning.safe_max_score
        )
        kept = junk = 0
        for photo in photos:
            for query in photo.queries:
                out = await search_images(
                    index, embedder, prices, tuning_at, SearchParams(q=query, mode="semantic", per_page=100)
                )
                kept += any(ids[item.id] is photo for item in out.items)
        for q in NONSENSE:
            out = await search_images(index, embedder, prices, tuning_at, SearchParams(q=q, mode="semantic"))
            junk += out.total
        sweep.append((floor, kept, junk))
    await db.close()

    summary = {}
    for split in ("tune", "held-out"):
        for mode in MODES:
            rows = [o for o in outcomes if o.photo.split == split and o.mode == mode]
            mrr = sum(1 / o.rank for o in rows if o.rank) / len(rows)
            recall5 = sum(1 for o in rows if o.rank and o.rank <= 5) / len(rows)
            summary[(split, mode)] = (mrr, recall5, len(rows))

    analyzer = type(get_image_analyzer()).__name__
    tuned, held = sum(p.split == "tune" for p in photos), sum(p.split == "held-out" for p in photos)
    print(f"\n{len(photos)} photos ({tuned} tune, {held} held-out), {len(outcomes) // len(MODES)} queries; "
          f"ingest through processing + search_sync {ingest_s:.1f} s; analyzer {analyzer}")  # fmt: skip
    print(f"{'split':<9} {'mode':<9} {'MRR':>6} {'R@5':>6} {'queries':>8}   target: MRR >= 0.8 semantic & hybrid")
    for (split, mode), (mrr, recall5, n) in summary.items():
        print(f"{split:<9} {mode:<9} {mrr:6.3f} {recall5:6.3f} {n:8d}")

    for mode in MODES:
        misses = [
            o for o in outcomes if o.mode == mode and o.rank != 1 and (split_shown == "all" or o.photo.split == "tune")
        ]
        print(f"\nnot first in {mode} ({len(misses)}):")
        for o in misses:
            where = f"rank {o.rank}" if o.rank else f"absent (total {o.total})"
            print(f"  [{o.photo.split}] {o.photo.name!r} <- {o.query!r}: {where}; tags {tags[o.photo.name]}")

    absent = [o for o in outcomes if o.mode == "hybrid" and o.rank is None and o.total < PAGE]
    dropped = [o for o in outcomes if o.mode == "hybrid" and o.total == 0]
    print("\nrelevance floor:")
    for (q, mode), total in nonsense.items():
        print(f"  nonsense {q!r} {mode}: {total} results {'OK' if total == 0 else 'FAIL'}")
    print(f"  labelled queries returning nothing in hybrid: {len(dropped)} {'OK' if not dropped else 'FAIL'}")
    for o in dropped + absent:
        print(f"    {o.photo.name!r} <- {o.query!r} (total {o.total})")
    n_queries = len(outcomes) // len(MODES)
    print("\nfloor sweep (semantic leg): max cosine distance -> labelled queries still returning their photo; "
          "results for the nonsense queries")  # fmt: skip
    for floor, kept, junk in sweep:
        mark = "  <- configured" if floor == settings.SEARCH_MAX_VECTOR_DISTANCE else ""
        print(f"  {floor:.2f}: {kept}/{n_queries} kept; {junk} nonsense results{mark}")
    return {"summary": summary, "nonsense": nonsense, "dropped": len(dropped), "sweep": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "all"), default="all", help="whose misses to print")
    args = parser.parse_args()
    on_embedded_postgres("bench-relevance-", lambda dsn: run(dsn, args.split))


if __name__ == "__main__":
    main()
