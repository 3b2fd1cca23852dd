"""Throughput and latency of the HTTP path every API call takes: devhost -> Functions wrapper -> auth,
rate limit, validation -> handler, compared in the same run with a bare ASGI app on the same uvicorn.

Cases (each with `--clients` concurrent keep-alive clients for `--seconds`):
- baseline: a bare ASGI app answering a small JSON body (the floor of uvicorn + httpx on this machine),
- GET /api/me with a valid RS256 token (auth + rate limit + JSON),
- GET /api/health (three dependency checks: Postgres, Azurite, outbox backlog).

The load generator shares the machine's cores with the server, as it does in CI. Prints JSON lines, then a table.

    .venv/bin/python -m bench.http_edge [--seconds 10] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._support import free_port
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost, token

BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"id":"alice","roles":["admin"]}'})
"""


async def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(timeout=10, headers=headers) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.get(url)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    results: list[tuple[str, dict[str, float]]] = []

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        bare = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"],
            cwd=bare_dir,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(100):
                try:
                    httpx.get(url)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            results.append(
                ("baseline: bare ASGI app, same uvicorn", asyncio.run(load(url, {}, args.clients, args.seconds)))
            )
        finally:
            bare.terminate()
            bare.wait()

        env = devhost_environment(Path(tmp) / "var")
        env["RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE"] = "10000000"
        env["LOG_LEVEL"] = "WARNING"  # one log line per request would measure the terminal
        proc = start_devhost(env, Path(tmp) / "devhost.log")
        try:
            base = f"http://127.0.0.1:{env['DEVHOST_PORT']}/api"
            auth = {"Authorization": f"Bearer {token(env, '--role', 'admin', '--sub', 'alice')}"}
            results.append(
                (
                    "GET /api/me (RS256 token, role guard)",
                    asyncio.run(load(f"{base}/me", auth, args.clients, args.seconds)),
                )
            )
            results.append(
                (
                    "GET /api/health (db + blob + outbox)",
                    asyncio.run(load(f"{base}/health", {}, args.clients, args.seconds)),
                )
            )
        finally:
            stop_devhost(proc)

    for case, figures in results:
        print(json.dumps({"bench": "http_edge", "case": case, "clients": args.clients, **figures}))
    baseline = results[0][1]["requests_per_s"]
    print(f"\n{'case':42} {'req/s':>8} {'vs bare':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for case, f in results:
        share = f"{f['requests_per_s'] / baseline:.0%}"
        print(f"{case:42} {f['requests_per_s']:>8} {share:>8} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['errors']:>7}")


if __name__ == "__main__":
    main()
