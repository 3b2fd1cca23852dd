"""The migration survives SIGKILL: a tree with broken files and copies, killed twice mid-run against a real
devhost and resumed, ends with every good file in `originals` exactly once and every other file reported
with its reason; nothing is uploaded or processed twice and the resumed runs never re-read a done file.

bench/migration.py runs the same on a large tree and prints the rates.
"""

from __future__ import annotations

import pytest

from shared.config import AZURITE_ACCOUNT, AZURITE_KEY
from shared.db.embedded import EmbeddedPostgres
from shared.storage import ORIGINALS
from shared.storage.azure_blob import AzureBlobStore
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost
from tests.fixtures.migration_crash import CrashingMigration, build_tree, verify

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.xdist_group("devhost"), pytest.mark.timeout(600)]

FILES = 300


async def test_a_migration_killed_twice_resumes_to_exactly_once(tmp_path):
    tree = build_tree(tmp_path / "tree", FILES, megapixels=0.08, broken=0.03, copies=0.03, workers=2)
    env = devhost_environment(tmp_path / "var")
    env["MIN_UPLOAD_MEGAPIXELS"] = "0.05"  # small files keep the test quick; the rule is the same
    # Ingestion only: processing (renditions, models) is measured elsewhere and would only slow this down.
    proc = start_devhost(env, tmp_path / "devhost.log", "--without", "process_uploaded_image")
    try:
        dsn = EmbeddedPostgres(tmp_path / "var" / "pg" / "data").start()  # joins devhost's server
        migration = CrashingMigration(env, dsn, tree, tmp_path / "report.jsonl", concurrency=2, wait_seconds=120)

        await migration.run(kill_at=(FILES // 4, FILES * 3 // 5))

        assert [run.killed for run in migration.runs] == [True, True, False]
        store = AzureBlobStore.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{env['AZURITE_BLOB_PORT']}/{AZURITE_ACCOUNT};"
        )
        try:
            originals = {blob.name async for blob in store.list(ORIGINALS)}
        finally:
            await store.close()
        assert await verify(migration, originals) == []
    finally:
        assert stop_devhost(proc) == 0
