"""devhost end to end: a real process serving function_app.py on embedded Postgres, Azurite and the bus."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from shared.config import PROJECT_ROOT
from shared.db.embedded import EmbeddedPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("devhost")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=("cmdline",)):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(proc)
    return found


def _start_devhost(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--port", env["DEVHOST_PORT"]],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    base = f"http://127.0.0.1:{env['DEVHOST_PORT']}/api"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"devhost exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"devhost not healthy in 90 s:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.25)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


@pytest.fixture(scope="module")
def devhost(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("devhost-var")
    port = _free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "DEVHOST_PORT": str(port),
        "AZURITE_BLOB_PORT": str(_free_port()),
        "OUTBOX_RELAY_SCHEDULE": "*/1 * * * * *",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    env.pop("STORAGE_CONNECTION_STRING", None)
    env.pop("DATABASE_URL", None)
    log_path = var_dir.parent / f"devhost-{port}.log"
    state = {"base": f"http://127.0.0.1:{port}/api", "env": env, "var_dir": var_dir, "log": log_path}
    state["proc"] = _start_devhost(env, log_path)
    try:
        yield state
    finally:
        _stop(state["proc"])


def _token(devhost, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "devhost", "token", *args],
        cwd=PROJECT_ROOT,
        env=devhost["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_health_reports_database_storage_and_bus(devhost):
    response = httpx.get(f"{devhost['base']}/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "blob_storage", "bus"}
    assert body["checks"]["database"]["pgvector"]
    assert body["checks"]["bus"]["transport"] == "postgres"
    assert response.headers["x-correlation-id"]


def test_me_answers_with_a_local_token_and_401_problem_without(devhost):
    token = _token(devhost, "--role", "admin", "--sub", "alice")
    me = httpx.get(f"{devhost['base']}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["id"] == "alice" and me.json()["roles"] == ["admin"]

    anonymous = httpx.get(f"{devhost['base']}/me", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    forged = httpx.get(f"{devhost['base']}/me", headers={"Authorization": f"Bearer {token}x"}, timeout=10)
    assert forged.status_code == 401


def test_an_event_published_through_the_outbox_runs_its_trigger_function(devhost):
    admin = _token(devhost, "--role", "admin", "--sub", "ops")
    response = httpx.post(
        f"{devhost['base']}/admin/bus/ping",
        headers={"Authorization": f"Bearer {admin}", "x-correlation-id": "e2e-ping-1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery_count"] == 1
    assert body["correlation_id"] == "e2e-ping-1"  # carried HTTP -> outbox -> bus -> trigger
    assert response.headers["x-correlation-id"] == "e2e-ping-1"
    devhost["first_ping"] = body["nonce"]
    buyer = _token(devhost, "--role", "buyer", "--sub", "bob")
    forbidden = httpx.post(f"{devhost['base']}/admin/bus/ping", headers={"Authorization": f"Bearer {buyer}"})
    assert forbidden.status_code == 403


def test_openapi_document_lists_the_registered_routes(devhost):
    doc = httpx.get(f"{devhost['base']}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/health", "/api/me", "/api/openapi.json", "/api/admin/bus/ping"} <= set(doc["paths"])


def test_unknown_route_is_a_404_problem(devhost):
    response = httpx.get(f"{devhost['base']}/no/such/route", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_ctrl_c_stops_everything_and_leaves_no_process_behind(devhost):
    proc = devhost["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0, devhost["log"].read_text()[-4000:]
    deadline = time.monotonic() + 10
    while _processes_using(devhost["var_dir"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = [p.info["cmdline"] for p in _processes_using(devhost["var_dir"])]
    assert leftovers == []


def test_a_second_start_reuses_the_data_in_var(devhost):
    devhost["proc"] = _start_devhost(devhost["env"], devhost["log"])
    server = EmbeddedPostgres(devhost["var_dir"] / "pg" / "data")

    async def pings() -> set[str]:
        conn = await asyncpg.connect(server.start())
        try:
            return {r["nonce"] for r in await conn.fetch("select nonce from platform.bus_pings")}
        finally:
            await conn.close()

    try:
        assert devhost["first_ping"] in asyncio.run(pings())
    finally:
        server.stop()
    assert _stop(devhost["proc"]) == 0
