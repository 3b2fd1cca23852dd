"""Starting and stopping a real devhost process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from shared.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=("cmdline",)):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(proc)
    return found


def start_devhost(env: dict[str, str], log_path: Path, *options: str, root: Path = PROJECT_ROOT) -> subprocess.Popen:
    """`options`: more `devhost start` options, e.g. ("--without", "process_uploaded_image"); `root`: the
    checkout whose code runs (benchmarks compare another one's)."""
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--port", env["DEVHOST_PORT"], *options],
        cwd=root,
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


def stop_devhost(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def devhost_environment(var_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "DEVHOST_PORT": str(free_port()),
        "AZURITE_BLOB_PORT": str(free_port()),
        "STRIPE_STANDIN_PORT": str(free_port()),
        "OUTBOX_RELAY_SCHEDULE": "*/1 * * * * *",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "DEVHOST_PORTALS": "false",  # API tests need no pages; the browser tests turn it on
    }
    env.pop("STORAGE_CONNECTION_STRING", None)
    env.pop("DATABASE_URL", None)
    return env


def token(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "devhost", "token", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()
