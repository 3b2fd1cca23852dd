"""Azurite's metadata store deleting one blob among many: stock LokiJS, a baseline revision's fixes, ours.

A migration moves each file from `incoming` to `originals`; Azurite records that in its LokiJS blobs
collection (the same four indices) as an insert into `originals` and, on the DELETE, a count and a
findAndRemove by account, container and name. This runs that sequence in Node on a collection already
holding --blobs blobs, with stock LokiJS, with tools/azurite-loki-fixes.cjs as of --baseline-rev, and with
the working tree's, each in its own process, and prints the CPU per moved file for each (same run, same
machine). No Azurite, no HTTP: the part of Azurite's CPU that grows with the blobs stored.

    .venv/bin/python -m bench.azurite_deletes [--blobs 100000] [--moves 2000] [--baseline-rev HEAD] [--stock]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from shared.storage.azurite import TOOLS_DIR

FIXES = TOOLS_DIR / "azurite-loki-fixes.cjs"

SCRIPT = r"""
const [fixes, blobs, moves] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const Loki = require("lokijs");
if (fixes) require(fixes);
const db = new Loki("bench.json", { persistenceMethod: "memory" });
const coll = db.addCollection("blobs", { indices: ["accountName", "containerName", "name", "snapshot"] });
const doc = (container, i) => ({ accountName: "devstoreaccount1", containerName: container,
  name: `agency-archive/${String(i).padStart(8, "0")}.jpg`, snapshot: "", properties: { contentLength: 21504 } });
for (let i = 0; i < blobs; i++) coll.insert(doc("originals", i));
for (let i = 0; i < 200; i++) coll.insert(doc("incoming", blobs + i));  // the backlog a listing reads
coll.find({ accountName: "devstoreaccount1", containerName: "incoming" });  // indices built before timing
const began = process.cpuUsage();
const wall = process.hrtime.bigint();
for (let i = 0; i < moves; i++) {
  const n = blobs + 200 + i;
  coll.insert(doc("incoming", n));  // the CLI's PUT
  const k = blobs + i;              // ingestion takes the oldest of the backlog
  const query = { accountName: "devstoreaccount1", containerName: "incoming", name: doc("incoming", k).name };
  coll.findOne(query);              // its GET
  coll.insert(doc("originals", k)); // the copy into originals
  if (coll.count(query) !== 1) throw new Error("lost a blob");
  coll.findAndRemove(query);        // its DELETE
}
const cpu = process.cpuUsage(began);
const left = coll.count({ accountName: "devstoreaccount1", containerName: "incoming" });
console.log(JSON.stringify({ cpu_ms_per_move: (cpu.user + cpu.system) / 1000 / moves,
  wall_ms_per_move: Number(process.hrtime.bigint() - wall) / 1e6 / moves, incoming_left: left, stored: coll.count() }));
"""


def measure(fixes: Path | None, blobs: int, moves: int) -> dict:
    done = subprocess.run(  # noqa: S603 - node with our own script and numbers
        [shutil.which("node") or "node", "-e", SCRIPT, str(fixes or ""), str(blobs), str(moves)],
        cwd=TOOLS_DIR,
        env={**os.environ, "NODE_PATH": str(TOOLS_DIR / "node_modules")},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000, help="blobs already stored")
    parser.add_argument("--moves", type=int, default=2_000, help="files moved from incoming to originals")
    parser.add_argument("--baseline-rev", default="HEAD", help="git revision whose fixes are the baseline")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is printed")
    parser.add_argument("--stock", action="store_true", help="also stock LokiJS (about 120 ms per file at 100k)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline-fixes.cjs"
        baseline.write_text(
            subprocess.run(  # noqa: S603 - git reading a file at a revision
                [shutil.which("git") or "git", "show", f"{args.baseline_rev}:tools/azurite-loki-fixes.cjs"],
                cwd=TOOLS_DIR.parent,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        subjects = {"stock LokiJS": None} if args.stock else {}
        subjects.update({f"fixes at {args.baseline_rev}": baseline, "fixes now": FIXES})
        runs: dict[str, list[dict]] = {label: [] for label in subjects}
        for _ in range(args.rounds):  # alternate, so that the machine's load falls on all alike
            for label, fixes in subjects.items():
                runs[label].append(measure(fixes, args.blobs, args.moves))
    print(f"{args.blobs:,} blobs stored, {args.moves:,} files moved incoming -> originals, median of {args.rounds}")
    print(f"{'':24} {'CPU ms per file':>16} {'wall ms per file':>17}")
    for label, results in runs.items():
        assert all(r["incoming_left"] == 200 for r in results), results
        cpu = sorted(r["cpu_ms_per_move"] for r in results)[len(results) // 2]
        wall = sorted(r["wall_ms_per_move"] for r in results)[len(results) // 2]
        print(f"{label:24} {cpu:16.3f} {wall:17.3f}")


if __name__ == "__main__":
    main()
