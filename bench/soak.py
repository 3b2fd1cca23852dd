"""Soak: mixed load on devhost for a bounded time, with Locust as a library.

devhost is started from scratch (embedded Postgres, Azurite, the Postgres bus, the Stripe stand-in,
every function in one worker process). A seed of approved images is uploaded first, then for
`--minutes` (default 10):

- searches at `--searches-per-minute` (default 10,000) over a few dozen queries, anonymous;
- uploads at 1/s: ticket, then the PUT to its SAS URL (small but valid photos; the processing,
  moderation and search-sync they set off run in the same worker);
- checkouts at 1/s: a new buyer adds an approved image to the cart, checks out and pays on the
  stand-in's hosted page (so a signed webhook comes back and licenses are issued).

Baseline, measured in the same run before the mix: searches alone, from one user, for 20 s.

Prints per route: requests, throughput, p50/p95/p99, errors; and the worker's RSS every 30 s with
its growth from minute 2 to the end. Anonymous search is rate-limited per IP in production; the
load comes from one IP here, so the per-IP limit is raised for the run.

    .venv/bin/python -m bench.soak [--minutes 10] [--searches-per-minute 10000] [--search-users 40]
"""

# Locust patches the standard library with gevent: it must be imported before anything else.
from locust import HttpUser, constant_throughput, task  # isort: skip
from locust.env import Environment  # isort: skip

import argparse
import itertools
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import gevent
import httpx
import psutil

from bench import _support
from bench._support import free_port
from shared.auth.local_issuer import LocalIssuer
from shared.config import PROJECT_ROOT, load_settings
from tests.e2e.fault_stack import KEYWORDS, small_photo

QUERIES = [
    "colour blocks",
    "abstract pattern",
    "texture",
    "background design",
    "red",
    "blue pattern",
    "green texture",
    "colour",
    "design",
    "abstract background",
    "pattern texture",
    "blocks 12",
]
SEED_IMAGES = 30
RSS_EVERY_SECONDS = 30


class Devhost(_support.Devhost):
    """devhost with the Stripe stand-in, small photos allowed, and no per-IP limit worth the name."""

    def __init__(self, var_dir: Path) -> None:
        super().__init__(
            var_dir,
            {
                "STRIPE_STANDIN_PORT": str(free_port()),
                "RATE_LIMIT_PER_IP_PER_MINUTE": "1000000",
                "MIN_UPLOAD_MEGAPIXELS": "0.25",
                "MODERATION_MIN_MEGAPIXELS": "0.25",
            },
            drop=("STRIPE_API_BASE",),
        )

    def issuer(self) -> LocalIssuer:
        return LocalIssuer.from_settings(load_settings(VAR_DIR=self.var_dir))

    def rss_mib(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20


# --- seeding --------------------------------------------------------------------------------


_seeds = itertools.count(1_000_000)


def upload(client: Any, base: str, headers: dict[str, str], *, locust: bool = False) -> str:
    """Ticket, then PUT to its SAS URL; `client` is httpx (seeding) or Locust's requests session."""
    seed = next(_seeds)
    data = small_photo(seed)
    named = (lambda name: {"name": name}) if locust else (lambda name: {})
    ticket = client.post(
        f"{base}/api/contributor/uploads",
        headers=headers,
        json={
            "file_name": f"blocks-{seed}.jpg",
            "size_bytes": len(data),
            "content_type": "image/jpeg",
            "sidecar": {"title": f"Colour blocks {seed}", "keywords": list(KEYWORDS)},
        },
        **named("POST /api/contributor/uploads"),
    )
    ticket.raise_for_status()
    body = ticket.json()
    put = client.put(
        body["upload_url"],
        headers=body["headers"],
        **({"data": data} if locust else {"content": data}),
        **named("PUT upload to its SAS URL (Azurite)"),
    )
    put.raise_for_status()
    return body["image_id"]


def _patiently(make: Callable[[], str], attempts: int = 10) -> str:
    for attempt in range(attempts):
        try:
            return make()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code < 500 or attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def seed_images(devhost: Devhost, contributor: dict[str, str]) -> list[str]:
    with httpx.Client(timeout=60) as client:
        ids = [_patiently(lambda: upload(client, devhost.base, contributor)) for _ in range(SEED_IMAGES)]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            states = [
                client.get(f"{devhost.base}/api/contributor/images/{i}", headers=contributor).json()["state"]
                for i in ids
            ]
            if all(s in ("approved", "flagged", "processed", "quarantined") for s in states):
                return [i for i, s in zip(ids, states, strict=True) if s == "approved"]
            time.sleep(1)
    raise RuntimeError(f"seed images not processed in 300 s:\n{devhost.log_tail()}")


# --- the load -------------------------------------------------------------------------------


def user_classes(devhost: Devhost, issuer: LocalIssuer, for_sale: list[str], args: argparse.Namespace):
    contributor = {"Authorization": f"Bearer {issuer.issue('soak-contributor', ['contributor'], ttl=7200)}"}
    buyers = itertools.count()

    class Searcher(HttpUser):
        wait_time = constant_throughput(args.searches_per_minute / 60 / args.search_users)

        @task
        def search(self) -> None:
            self.client.get("/api/search", params={"q": random.choice(QUERIES)}, name="GET /api/search")

    class Uploader(HttpUser):
        wait_time = constant_throughput(1)

        @task
        def upload(self) -> None:
            upload(self.client, "", contributor, locust=True)

    class Buyer(HttpUser):
        wait_time = constant_throughput(1)

        @task
        def checkout(self) -> None:
            token = issuer.issue(f"soak-buyer-{next(buyers)}", ["buyer"], ttl=7200)
            headers = {"Authorization": f"Bearer {token}"}
            image_id = random.choice(for_sale)
            self.client.post(
                "/api/cart/items", headers=headers, json={"image_id": image_id}, name="POST /api/cart/items"
            )
            with self.client.post(
                "/api/checkout", headers=headers, name="POST /api/checkout", catch_response=True
            ) as r:
                if r.status_code != 201:
                    r.failure(f"{r.status_code}: {r.text[:200]}")
                    return
                url = r.json()["checkout_url"]
            page = self.client.get(url, name="stand-in: payment page")
            paths = set(re.findall(r'(?:form)?action="([^"]*/pay)"', page.text))
            if paths:
                self.client.post(
                    urljoin(url, paths.pop()), data={}, allow_redirects=False, name="stand-in: pay (webhook follows)"
                )

    Uploader.host = Buyer.host = Searcher.host = devhost.base
    return Searcher, Uploader, Buyer


def run_load(env: Environment, counts: dict, seconds: float, devhost: Devhost) -> list[tuple[float, float]]:
    runner = env.create_local_runner()
    total = sum(counts.values())
    runner.start(total, spawn_rate=total, wait=False)
    rss: list[tuple[float, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        rss.append((time.monotonic() - started, devhost.rss_mib()))
        gevent.sleep(min(RSS_EVERY_SECONDS, max(0.0, seconds - (time.monotonic() - started))))
    rss.append((time.monotonic() - started, devhost.rss_mib()))
    runner.quit()
    env.task_exceptions = sum(e["count"] for e in runner.exceptions.values())  # type: ignore[attr-defined]
    return rss


def route_table(env: Environment, seconds: float) -> list[dict]:
    rows = []
    for (name, _method), entry in sorted(env.stats.entries.items()):
        if entry.num_requests == 0:
            continue
        rows.append(
            {
                "route": name,
                "requests": entry.num_requests,
                "per_s": round(entry.num_requests / seconds, 2),
                "p50_ms": entry.get_response_time_percentile(0.50),
                "p95_ms": entry.get_response_time_percentile(0.95),
                "p99_ms": entry.get_response_time_percentile(0.99),
                "errors": entry.num_failures,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--searches-per-minute", type=float, default=10_000)
    parser.add_argument("--search-users", type=int, default=40)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="soak-", dir=PROJECT_ROOT / "var"))
    devhost = Devhost(var_dir)
    try:
        devhost.start()
        issuer = devhost.issuer()
        contributor = {"Authorization": f"Bearer {issuer.issue('soak-contributor', ['contributor'], ttl=7200)}"}
        for_sale = seed_images(devhost, contributor)
        if not for_sale:
            raise RuntimeError("no seed image was approved")
        Searcher, Uploader, Buyer = user_classes(devhost, issuer, for_sale, args)

        baseline = Environment(user_classes=[Searcher])
        Searcher.fixed_count = 1
        Searcher.wait_time = constant_throughput(20)
        run_load(baseline, {"search": 1}, 20, devhost)
        base_rows = route_table(baseline, 20)

        Searcher.fixed_count = args.search_users
        Searcher.wait_time = constant_throughput(args.searches_per_minute / 60 / args.search_users)
        Uploader.fixed_count = Buyer.fixed_count = 1
        env = Environment(user_classes=[Searcher, Uploader, Buyer])
        seconds = args.minutes * 60
        rss = run_load(env, {"search": args.search_users, "upload": 1, "buy": 1}, seconds, devhost)
        rows = route_table(env, seconds)
        task_exceptions = env.task_exceptions
    except BaseException:
        print(f"devhost log:\n{devhost.log_tail()}", file=sys.stderr)
        raise
    finally:
        devhost.stop()
        shutil.rmtree(var_dir, ignore_errors=True)

    at_2 = next((mib for t, mib in rss if t >= 120), rss[0][1])
    growth = (rss[-1][1] - at_2) / at_2 * 100 if len(rss) > 1 else 0.0
    result = {
        "minutes": args.minutes,
        "target_searches_per_minute": args.searches_per_minute,
        "baseline_search_alone": base_rows,
        "routes": rows,
        "errors": sum(r["errors"] for r in rows),
        "task_exceptions": task_exceptions,
        "worker_rss_mib": [(round(t), round(m, 1)) for t, m in rss],
        "worker_rss_growth_from_minute_2_pct": round(growth, 1),
    }
    print(json.dumps(result))
    print(f"\nbaseline: searches alone, 1 user, 20 s: {base_rows}")
    print(f"\n{'route':46} {'requests':>9} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for r in rows:
        print(
            f"{r['route']:46} {r['requests']:9} {r['per_s']:7} {r['p50_ms']:7} {r['p95_ms']:7} {r['p99_ms']:7} "
            f"{r['errors']:7}"
        )
    print(f"errors: {result['errors']} failed requests, {task_exceptions} exceptions in client tasks")
    print(f"\nworker RSS (s, MiB): {result['worker_rss_mib']}")
    print(f"worker RSS growth from minute 2 to the end: {result['worker_rss_growth_from_minute_2_pct']}%")


if __name__ == "__main__":
    main()
