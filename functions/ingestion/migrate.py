"""`python -m functions.ingestion.migrate SRC_DIR --contributor ID`: move a local tree of images into the platform.

Every file goes through the same path as a portal upload (upload ticket, blob in `incoming`, the blob
trigger's validation). Re-running the same command resumes: done files are skipped without being read,
failed ones retried. Locally, start devhost first (it runs Azurite and the triggers); the CLI joins the
same embedded Postgres and Azurite.

It shows a progress bar (files/s, ETA), waits up to --wait-seconds for ingestion to decide on the
uploaded files, writes a report with one line per file (--report, JSON lines or .csv), prints a summary
(done, duplicate, quarantined by reason, failed) and exits 1 if any file failed. Each run is an
operator's action on the contributor's library, so it is recorded in the audit trail.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from functions.ingestion.manifest import failures
from functions.ingestion.migration import (
    FileOutcome,
    Migration,
    MigrationReport,
    SidecarError,
    SidecarTable,
    SourceFile,
    count_images,
    load_sidecar,
)
from functions.ingestion.migration_report import OutcomeCounts, wait_for_decisions, write_report
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import StorageUnavailable
from shared.audit import command_line_operator, record_admin_action
from shared.config import AZURITE_ACCOUNT, AZURITE_KEY, ConfigError, Settings, get_settings
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.entra import database_password
from shared.db.migrate import migrate as apply_migrations
from shared.storage.azure_blob import AzureBlobStore

app = typer.Typer(add_completion=False, help=__doc__)
console = Console(stderr=True)


class FilesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.1f} files/s" if speed else "   ... files/s", style="progress.data.speed")


@app.command()
def main(
    src_dir: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, readable=True, help="Folder to migrate")
    ],
    contributor: Annotated[str, typer.Option("--contributor", help="Contributor id that will own the images")],
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Uploads in flight at once")] = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Walk and compare with the manifest; change nothing")
    ] = False,
    sidecar: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="CSV or JSON with title, description, keywords per file path"),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Where to write every file's outcome: JSON lines, or CSV if it ends in .csv "
            "(default: migration-<contributor>-<UTC time>.jsonl here)",
        ),
    ] = None,
    wait_seconds: Annotated[
        float, typer.Option(min=0, help="How long to wait for ingestion to decide on the uploaded files")
    ] = 600,
    actor: Annotated[
        str | None, typer.Option(help="Who the audit log names for this run (default: cli:<user>@<host>)")
    ] = None,
) -> None:
    """Upload every JPEG, PNG, WebP and TIFF under SRC_DIR for CONTRIBUTOR, resumably."""
    try:
        settings = get_settings()
        table: SidecarTable | dict = load_sidecar(sidecar) if sidecar else {}
    except (ConfigError, SidecarError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if report is None and not dry_run:
        report = Path(f"migration-{contributor}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl")
    options = RunOptions(contributor, concurrency, dry_run, table, report, wait_seconds, actor)
    try:
        failed = asyncio.run(_run(settings, src_dir, options))
    except StorageUnavailable as exc:
        console.print(f"[red]{exc}: is devhost (Azurite) running, or the storage account reachable?[/red]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted. Run the same command again to resume where it stopped.[/yellow]")
        raise typer.Exit(130) from None
    finally:
        if isinstance(table, SidecarTable):
            table.close()
    raise typer.Exit(1 if failed else 0)


@dataclass(frozen=True)
class RunOptions:
    contributor: str
    concurrency: int
    dry_run: bool
    sidecar: SidecarTable | dict
    report: Path | None
    wait_seconds: float
    actor: str | None


async def _run(settings: Settings, root: Path, options: RunOptions) -> int:
    db, embedded = await _database(settings, max_size=options.concurrency + 2)
    storage = _storage(settings)
    stop_counting = threading.Event()
    try:
        with _progress() as progress:
            task = progress.add_task("dry run" if options.dry_run else "uploading", total=None)

            def advance(_file: SourceFile, _outcome: FileOutcome) -> None:
                progress.advance(task)

            migration = Migration(
                db,
                storage,
                IngestionPolicy.from_settings(settings),
                options.contributor,
                root,
                concurrency=options.concurrency,
                dry_run=options.dry_run,
                sidecar=options.sidecar,
                on_file=advance,
            )
            if not options.dry_run:
                await _record_run(db, migration, options)
            # The total comes from a second walk in a thread, so uploads start at once; the ETA appears
            # when it is known. It stops early if the run does (Ctrl-C must not wait for a 5M-file walk).
            counter = asyncio.create_task(asyncio.to_thread(count_images, migration.root, stop_counting))
            counter.add_done_callback(
                lambda done: (
                    progress.update(task, total=done.result())
                    if not done.cancelled() and not done.exception()
                    else None
                )
            )
            report = await migration.run()
            await counter
            if not options.dry_run and options.wait_seconds > 0:
                deciding = progress.add_task("ingesting", total=None)
                left = await wait_for_decisions(
                    db,
                    migration.contributor_id,
                    migration.source_root,
                    options.wait_seconds,
                    lambda total, decided: progress.update(deciding, total=total, completed=decided),
                )
                if left:
                    console.print(f"[yellow]{left} files still wait for ingestion; re-run later for them.[/yellow]")
        counts = None
        if not options.dry_run:
            counts = await write_report(db, migration.contributor_id, migration.source_root, options.report)
            console.print(f"Report of every file: {options.report}")
        await _print_report(db, migration, report, counts)
        # Failed now or in an earlier run and not fixed since: the tree is not fully migrated.
        return counts.failed if counts is not None else report.failed
    finally:
        stop_counting.set()
        await storage.close()
        await db.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        FilesPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


async def _record_run(db: Database, migration: Migration, options: RunOptions) -> None:
    async with db.transaction() as conn:
        await record_admin_action(
            conn,
            service="ingestion",
            actor=options.actor or command_line_operator(),
            action="migration.run",
            target_type="contributor",
            target_id=migration.contributor_id,
            after={"source_root": migration.source_root, "sidecar_entries": len(options.sidecar)},
        )


async def _print_report(
    db: Database, migration: Migration, report: MigrationReport, counts: OutcomeCounts | None
) -> None:
    summary = Table(title="Migration" + (" (dry run)" if migration.dry_run else ""), show_header=False)
    summary.add_row("files seen", str(report.seen))
    if migration.dry_run:
        summary.add_row("would upload", str(report.would_upload))
    else:
        summary.add_row("uploaded now", f"{report.uploaded} ({report.bytes_uploaded / 2**20:.1f} MiB)")
    summary.add_row("already done, skipped", str(report.skipped))
    summary.add_row("failed now", str(report.failed))
    for directory in report.unreadable_directories:
        summary.add_row("unreadable folder", directory)
    console.print(summary)
    if counts is not None:
        outcomes = Table("outcome", "files", title="Every file of this tree, all runs")
        outcomes.add_row("done (in originals)", str(counts.by_outcome["done"]))
        outcomes.add_row("duplicate", str(counts.by_outcome["duplicate"]))
        for reason, n in sorted(counts.quarantined_by_reason.items()):
            outcomes.add_row(f"quarantined: {reason}", str(n))
        for reason, n in sorted(counts.failed_by_reason.items()):
            outcomes.add_row(f"failed: {reason}", str(n))
        if not counts.failed_by_reason:
            outcomes.add_row("failed", "0")
        outcomes.add_row("pending (ingestion not done)", str(counts.by_outcome["pending"]))
        console.print(outcomes)
    failed = await failures(db, migration.contributor_id, migration.source_root)
    if failed:
        listing = Table("file", "reason", "attempts", title="Failures (re-run to retry)")
        for row in failed:
            listing.add_row(row["rel_path"], row["error"] or "", str(row["attempts"]))
        console.print(listing)


async def _database(settings: Settings, max_size: int) -> tuple[Database, EmbeddedPostgres | None]:
    embedded = None
    dsn = settings.DATABASE_URL
    if dsn is None:  # join (or start) the same embedded server devhost uses
        embedded = EmbeddedPostgres(
            settings.VAR_DIR / "pg" / "data", shared_buffers_mb=settings.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB
        )
        dsn = await asyncio.to_thread(embedded.start)
    password = database_password(settings)  # an Entra token source in Azure
    await apply_migrations(dsn, password=password)
    return await connect_database(dsn, min_size=1, max_size=max_size, password=password), embedded


def _storage(settings: Settings) -> AzureBlobStore:
    if settings.STORAGE_ACCOUNT_URL and not settings.STORAGE_CONNECTION_STRING:
        return AzureBlobStore.from_settings(settings)  # managed identity in Azure
    return AzureBlobStore.from_connection_string(_storage_connection(settings))


def _storage_connection(settings: Settings) -> str:
    """The configured connection string; locally, devhost's Azurite when none is set."""
    value = settings.STORAGE_CONNECTION_STRING or ""
    if value and value.replace(" ", "").lower() != "usedevelopmentstorage=true":
        return value
    endpoint = f"http://127.0.0.1:{settings.AZURITE_BLOB_PORT}/{AZURITE_ACCOUNT}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    )


if __name__ == "__main__":
    app()
