"""Re-embed: run the current image model again over the originals of images an older model analysed.

After a model switch (a CLIP export, new concepts, another dimension) each image keeps the tags and
embedding its model gave it, and one of another dimension drops out of the vector leg of search. This
operator job walks processing's results (image_id order, keyset batches) of images still on show (their
renditions not withdrawn) whose `model_version` is not the current analyzer's, and for each one reads the
original, decodes it to the picture processing gives the models, analyses it, and in one transaction
stores the new tags, embedding and version in the result row and puts `image.reanalyzed` in the outbox.
Moderation, which owns the listing and its revision, merges them and announces image.updated, so
search_sync, checkout and the catalogue follow the way they follow any edit.

Resumable and idempotent: a row is only selected, and only updated, while its version differs, so a run
stopped half way (or run twice) carries on with what is left. An original that is gone or cannot be
decoded is reported and left as it was. Audited (`images.reembed`) when a run starts and when it ends.

    .venv/bin/python -m functions.processing.reembed [--batch-size 8] [--limit N]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import structlog
import typer
from PIL import Image

from functions.processing.work import ProcessingOptions, render_and_describe
from shared.audit import command_line_operator, record_admin_action
from shared.bus.events import ImageReanalyzed, Tag
from shared.bus.outbox import add_to_outbox
from shared.db import Database
from shared.imaging.decode import UndecodableImage
from shared.ml import ImageAnalysis, ModelInputError
from shared.storage.port import ORIGINALS, BlobNotFound, BlobStore

log = structlog.get_logger()


class VersionedAnalyzer(Protocol):
    """processing's BatchingAnalyzer: async analysis, and the model set-up's version."""

    @property
    def version(self) -> str | None: ...

    async def analyze(self, image: Image.Image) -> ImageAnalysis: ...


@dataclass
class ReembedReport:
    model_version: str
    reembedded: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # image id -> why it was left as it was

    def summary(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "reembedded": self.reembedded, "failed": len(self.failed)}


# Out of date and still on show (withdrawal empties `renditions` when an image is rejected or taken down).
_OUT_OF_DATE_WHERE = "status = 'processed' and renditions <> '{}'::jsonb and model_version is distinct from $1"
_OUT_OF_DATE = f"""
select image_id, contributor_id, original_blob from processing.results
where {_OUT_OF_DATE_WHERE} and image_id > $2
order by image_id limit $3
"""
_REMAINING = f"select count(*) from processing.results where {_OUT_OF_DATE_WHERE}"
_STORE = """
update processing.results set
  model_version = $2,
  listing = listing || jsonb_build_object('tags', $3::text::jsonb, 'embedding', $4::text::jsonb)
where image_id = $1 and model_version is distinct from $2
returning image_id
"""


async def reembed(
    db: Database,
    storage: BlobStore,
    analyzer: VersionedAnalyzer,
    options: ProcessingOptions,
    *,
    batch_size: int = 8,
    limit: int | None = None,
    actor: str | None = None,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReembedReport:
    """Re-embed up to `limit` out-of-date images (all by default), `batch_size` at a time."""
    version = analyzer.version
    if not version:
        raise ValueError("the analyzer names no model version, so what is out of date cannot be told")
    actor = actor or command_line_operator()
    report = ReembedReport(version)
    async with db.transaction() as conn:
        await record_admin_action(
            conn,
            service="processing",
            actor=actor,
            action="images.reembed.start",
            target_type="image_model",
            target_id=version,
            after={"batch_size": batch_size, "limit": limit},
        )
    last = UUID(int=0)
    done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        async with db.connection() as conn:
            rows = await conn.fetch(_OUT_OF_DATE, version, last, size)
        if not rows:
            break
        last = rows[-1]["image_id"]
        # A batch at once: BatchingAnalyzer runs their inference together; decoding uses the executor.
        outcomes = await asyncio.gather(*(_reembed_one(db, storage, analyzer, options, executor, row) for row in rows))
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome == "reembedded":
                report.reembedded += 1
            elif outcome != "done_elsewhere":
                report.failed[str(row["image_id"])] = outcome
        done += len(rows)
        if progress is not None:
            progress(len(rows))
    async with db.transaction() as conn:
        await record_admin_action(
            conn,
            service="processing",
            actor=actor,
            action="images.reembed.finish",
            target_type="image_model",
            target_id=version,
            after={**report.summary(), "failed_images": sorted(report.failed)[:100]},
        )
    log.info("processing.reembed_finished", **report.summary())
    return report


async def _reembed_one(
    db: Database,
    storage: BlobStore,
    analyzer: VersionedAnalyzer,
    options: ProcessingOptions,
    executor: Executor | None,
    row: Any,
) -> str:
    image_id = row["image_id"]
    try:
        data = await storage.get(ORIGINALS, row["original_blob"])
    except BlobNotFound:
        return "original missing"
    try:
        work = await asyncio.get_running_loop().run_in_executor(executor, render_and_describe, data, options)
    except UndecodableImage as exc:
        return f"undecodable: {exc}"
    del data  # originals can be large
    try:
        analysis = await analyzer.analyze(work.analysis_input)
    except ModelInputError as exc:
        return f"refused by the model: {exc}"
    tags = [Tag(label=label, confidence=min(1.0, max(0.0, float(conf)))) for label, conf in analysis.tags]
    embedding = np.round(np.asarray(analysis.embedding, dtype=np.float64), 6).tolist()
    event = ImageReanalyzed(
        image_id=image_id,
        contributor_id=row["contributor_id"],
        model_version=str(analyzer.version),
        tags=tags,
        embedding=embedding,
    )
    async with db.transaction() as conn:
        # The same version condition as the walk: a second run racing this one stores and announces once.
        stored = await conn.fetchval(
            _STORE,
            image_id,
            event.model_version,
            json.dumps([tag.model_dump(mode="json") for tag in tags]),
            json.dumps(embedding),
        )
        if stored is None:
            return "done_elsewhere"
        await add_to_outbox(conn, event)
    return "reembedded"


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    batch_size: int = typer.Option(8, min=1, max=256, help="Originals read and analysed together."),
    limit: int = typer.Option(None, min=1, help="Stop after this many images (run again to go on)."),
    actor: str = typer.Option(None, help="Who the audit log names (default: cli:<user>@<host>)."),
):
    """Re-run the current image model over images an older model analysed."""
    asyncio.run(_run(batch_size, limit, actor))


async def _run(batch_size: int, limit: int | None, actor: str | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from functions.processing.batching import BatchingAnalyzer
    from shared.config import get_settings
    from shared.ml import get_image_analyzer
    from shared.runtime import build_runtime

    settings = get_settings()
    runtime = await build_runtime(settings)
    try:
        analyzer = BatchingAnalyzer(await asyncio.to_thread(get_image_analyzer), max_batch=settings.PROCESSING_ML_BATCH)
        async with runtime.db.connection() as conn:
            total = await conn.fetchval(_REMAINING, analyzer.version)
        with Progress(TextColumn("re-embed"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("images", total=min(total, limit or total))
            report = await reembed(
                runtime.db,
                runtime.storage,
                analyzer,
                ProcessingOptions.from_settings(settings),
                batch_size=batch_size,
                limit=limit,
                actor=actor,
                progress=lambda n: bar.advance(task, n),
            )
        typer.echo(f"re-embedded {report.reembedded} images with {report.model_version}; {len(report.failed)} left:")
        for image_id, why in sorted(report.failed.items()):
            typer.echo(f"  {image_id}: {why}")
    finally:
        await runtime.close()


if __name__ == "__main__":
    cli()
