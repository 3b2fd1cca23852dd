"""Run Azurite's blob service (the local Azure Storage emulator) as a child process.

Azurite comes from npm and lives in the project's tools/ folder (`npm ci --prefix tools`).
devhost starts it with `persist=True` (data kept under VAR_DIR/azurite across restarts);
tests start one in memory per worker on a free port.

The child runs in its own process group and is stopped with the whole group
(SIGTERM, then SIGKILL): on `stop()`, on leaving the `with` block, at interpreter
exit (atexit), and, on Linux, when the parent dies abruptly (parent-death signal).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from shared.config import AZURITE_ACCOUNT, AZURITE_KEY, PROJECT_ROOT

TOOLS_DIR = PROJECT_ROOT / "tools"
AZURITE_BLOB_BIN = TOOLS_DIR / "node_modules" / ".bin" / ("azurite-blob.cmd" if os.name == "nt" else "azurite-blob")
# Starts the same blob service with an index fix to its metadata lookups (see the file).
AZURITE_LAUNCHER = TOOLS_DIR / "azurite-blob.cjs"
SETUP_HINT = "run the project setup (or `npm ci --prefix tools`) to install Azurite"

_LISTENING = re.compile(r"successfully listens on https?://\S*:(\d+)")
# Longer than any client's idle keep-alive (aiohttp: 15 s), so the client always closes an idle
# connection first; with Azurite's default of 5 s a reused socket can be reset mid-request.
_KEEP_ALIVE_SECONDS = 300


class AzuriteError(RuntimeError):
    """Azurite could not be started (or stopped)."""


class AzuriteNotInstalled(AzuriteError):
    pass


class AzuriteServer:
    """One Azurite blob service. `with AzuriteServer(...) as azurite: azurite.connection_string`."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        blob_port: int = 0,
        host: str = "127.0.0.1",
        *,
        persist: bool = True,
        startup_timeout: float = 30.0,
        executable: Path | str | None = None,
        extent_memory_limit_mb: int | None = None,
    ) -> None:
        """data_dir: where persisted data lives (required with persist=True; with persist=False it is only
        the working directory). blob_port=0 picks a free port. persist=False keeps everything in memory."""
        if persist and data_dir is None:
            raise ValueError("AzuriteServer(persist=True) needs a data_dir (e.g. VAR_DIR / 'azurite')")
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.requested_port = blob_port
        self.host = host
        self.persist = persist
        self.startup_timeout = startup_timeout
        self.executable = Path(executable) if executable is not None else AZURITE_BLOB_BIN
        self.extent_memory_limit_mb = extent_memory_limit_mb
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._port_seen = threading.Event()
        self._reader: threading.Thread | None = None
        self._lock_file: IO[str] | None = None

    # --- public properties -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise AzuriteError("Azurite is not started")
        return self._port

    @property
    def client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.client_host}:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """The last lines Azurite printed (for error messages)."""
        return "\n".join(self._output)

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AzuriteServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> AzuriteServer:
        if self.is_running:
            return self
        command = self._command()
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.persist:
            self._lock_data_dir()
        try:
            self._spawn(command)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the whole process group: SIGTERM (Azurite saves its data and exits), SIGKILL after timeout."""
        proc, self._proc = self._proc, None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if proc is not None:
            try:
                if proc.poll() is None:
                    self._signal_group(proc, signal.SIGTERM)
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        self._signal_group(proc, signal.SIGKILL)
                        proc.wait(5)
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()
        if self._reader is not None:
            self._reader.join(2)
            self._reader = None
        self._port = None
        self._port_seen.clear()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    # --- internals ---------------------------------------------------------------------------

    def _command(self) -> list[str]:
        if not self.executable.exists():
            raise AzuriteNotInstalled(f"Azurite is not installed ({self.executable} is missing): {SETUP_HINT}")
        node = shutil.which("node")
        if node is None:
            raise AzuriteNotInstalled("Node.js (`node`) is not on PATH; Azurite needs it. Install Node.js 20+.")
        launch = [node, str(AZURITE_LAUNCHER)] if self.executable == AZURITE_BLOB_BIN else [str(self.executable)]
        command = [
            *launch,
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.requested_port),
            "--blobKeepAliveTimeout",
            str(_KEEP_ALIVE_SECONDS),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ]
        if self.persist:
            assert self.data_dir is not None
            command += ["--location", str(self.data_dir)]
        else:  # Azurite refuses --location together with in-memory persistence
            command.append("--inMemoryPersistence")
            if self.extent_memory_limit_mb is not None:
                command += ["--extentMemoryLimit", str(self.extent_memory_limit_mb)]
        return command

    def _lock_data_dir(self) -> None:
        assert self.data_dir is not None
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            return
        lock = (self.data_dir / ".azurite.lock").open("w")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise AzuriteError(
                f"another Azurite is already using {self.data_dir}; stop it (e.g. the other devhost) first"
            ) from None
        self._lock_file = lock

    def _spawn(self, command: list[str]) -> None:
        kwargs: dict[str, object] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True  # own process group, so stop() reaches every descendant
            death_signal = _parent_death_signal()
            if death_signal is not None:
                kwargs["preexec_fn"] = death_signal
        self._output.clear()
        self._port_seen.clear()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed executable, our own arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            **kwargs,  # type: ignore[call-overload]
        )
        atexit.register(self.stop)
        self._reader = threading.Thread(
            target=self._read_output, args=(self._proc.stdout,), name="azurite-output", daemon=True
        )
        self._reader.start()

    def _read_output(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                self._output.append(line)
                match = _LISTENING.search(line)
                if match:
                    self._port = int(match.group(1))
                    self._port_seen.set()

    def _wait_until_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._port_seen.wait(0.05):
            self._check_alive(proc)
            if time.monotonic() > deadline:
                raise AzuriteError(f"Azurite did not start within {self.startup_timeout}s:\n{self.output()}")
        while True:
            self._check_alive(proc)
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise AzuriteError(
                    f"Azurite listens on port {self._port} but does not answer HTTP within "
                    f"{self.startup_timeout}s:\n{self.output()}"
                )
            time.sleep(0.05)

    def _check_alive(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            if self._reader is not None:
                self._reader.join(2)
            hint = ""
            if "EADDRINUSE" in self.output():
                hint = f"\nPort {self.requested_port} is in use: stop what holds it or set AZURITE_BLOB_PORT."
            raise AzuriteError(f"Azurite exited with code {proc.returncode}:\n{self.output()}{hint}")

    def _answers(self) -> bool:
        """TCP connect, then an HTTP request that Azurite answers (with an auth error: that is fine)."""
        try:
            with socket.create_connection((self.client_host, self.port), timeout=1):
                pass
            conn = http.client.HTTPConnection(self.client_host, self.port, timeout=2)
            try:
                conn.request("GET", f"/{AZURITE_ACCOUNT}?comp=list")
                response = conn.getresponse()
                response.read()
                return "azurite" in (response.getheader("Server") or "").lower()
            finally:
                conn.close()
        except OSError:
            return False

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            if os.name == "nt":
                proc.kill() if sig == getattr(signal, "SIGKILL", None) else proc.terminate()
            else:
                os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
        except ProcessLookupError:
            pass


def _parent_death_signal():
    """Linux: a pre-exec hook that makes the kernel SIGTERM the child if this process dies without
    running atexit (SIGKILL, crash). Only from the main thread: the signal fires when the *thread*
    that forked exits, which for a worker thread could be long before the process ends."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent already died between fork and prctl
            os._exit(1)

    return hook
