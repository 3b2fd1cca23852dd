"""Azurite's metadata store, patched to look up and delete through its indices, answers exactly as before."""

import json
import shutil
import subprocess

import pytest

from shared.storage.azurite import AZURITE_LAUNCHER, TOOLS_DIR

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (TOOLS_DIR / "node_modules" / "lokijs").is_dir(),
    reason="needs Node.js and tools/node_modules (the project setup installs both)",
)

# Builds collections shaped as Azurite's (same indices), runs the queries Azurite runs, with and without the
# reordering, and prints what each returned.
SCRIPT = r"""
const Loki = require("lokijs");
function world() {
  const db = new Loki("probe.json", { persistenceMethod: "memory" });
  const blobs = db.addCollection("blobs", { indices: ["accountName", "containerName", "name", "snapshot"] });
  const blocks = db.addCollection("blocks", { indices: ["accountName", "containerName", "blobName", "name"] });
  for (const account of ["devstoreaccount1", "other"]) {
    for (const container of ["incoming", "originals", "quarantine"]) {
      for (let i = 0; i < 50; i++) {
        const name = `c/${String(i % 20).padStart(4, "0")}.jpg`;  // names repeat across containers and accounts
        blobs.insert({ accountName: account, containerName: container, name, snapshot: i < 20 ? "" : `s${i}` });
        blocks.insert({ accountName: account, containerName: container, blobName: name, name: `MDAw${i % 3}`,
                        isCommitted: i % 2 === 0 });
      }
    }
  }
  // a live view over a container, as LokiJS keeps it up to date through removals
  const view = blobs.addDynamicView("incoming");
  view.applyFind({ containerName: "incoming" });
  return { blobs, blocks, view };
}
function answers() {
  const { blobs, blocks, view } = world();
  const one = { accountName: "devstoreaccount1", containerName: "originals", name: "c/0007.jpg" };
  const rows = (coll, q) => coll.chain().find(q).data().map((d) => d.$loki).sort((a, b) => a - b);
  const out = {
    findOne: blobs.findOne({ ...one, snapshot: "" }).$loki,
    count: blobs.count(one),
    find: rows(blobs, one),
    listing: rows(blobs, { accountName: "devstoreaccount1", containerName: "incoming" }),
    regexFirst: rows(blobs, { name: { $regex: "^c/000" }, accountName: "other", containerName: "incoming" }),
    blocks: rows(blocks, { accountName: "other", containerName: "quarantine", blobName: "c/0003.jpg" }),
    block: rows(blocks, { name: "MDAw1", accountName: "other", containerName: "quarantine",
                          blobName: "c/0003.jpg", isCommitted: false }),
  };
  blobs.findAndRemove(one);
  out.afterRemove = blobs.count(one);
  // more single deletes, then every blob looked up again through the indices the deletes kept up to date
  for (const name of ["c/0000.jpg", "c/0019.jpg", "c/0011.jpg"]) {
    blobs.findAndRemove({ accountName: "other", containerName: "incoming", name });
    blocks.findAndRemove({ accountName: "other", containerName: "incoming", blobName: name });
  }
  blobs.chain().find({ accountName: "devstoreaccount1", containerName: "quarantine" }).remove();  // a big batch
  out.sweep = [];
  for (let i = 0; i < 20; i++) {
    const name = `c/${String(i).padStart(4, "0")}.jpg`;
    for (const containerName of ["incoming", "originals", "quarantine"]) {
      out.sweep.push(rows(blobs, { accountName: "other", containerName, name }));
      out.sweep.push(rows(blocks, { accountName: "other", containerName, blobName: name }));
    }
  }
  out.left = [blobs.count(), blocks.count()];
  // every document still found by its id, and the id index still lines up with the data
  out.byId = blobs.data.map((d) => blobs.get(d.$loki).$loki);
  out.aligned = [blobs, blocks].every((c) => c.data.every((d, i) => d.$loki === c.idIndex[i]));
  out.view = view.data().map((d) => d.$loki).sort((a, b) => a - b);
  return out;
}
const before = answers();
require(process.argv[1]);
const after = answers();
console.log(JSON.stringify({ before, after }));
"""


def test_patched_lookups_and_deletes_give_the_same_rows_as_stock_lokijs():
    done = subprocess.run(
        [shutil.which("node") or "node", "-e", SCRIPT, str(AZURITE_LAUNCHER.with_name("azurite-loki-fixes.cjs"))],
        cwd=TOOLS_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["after"] == result["before"]
    assert result["before"]["count"] > 1  # the base blob and its snapshots: more than one row to agree on
    assert result["before"]["afterRemove"] == 0
    assert result["before"]["left"] == [300 - 3 - 7 - 50, 300 - 7]
    assert result["after"]["aligned"] is True
    assert len(result["after"]["view"]) == 100 - 7  # both accounts' `incoming`, less the deleted ones
