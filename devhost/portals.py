"""The portals (Next.js static export under portals/) built when their sources change and served at /.

The build runs in a thread while the rest of devhost starts, so the API is up in its usual time; page
requests wait for the build. A stamp over the sources (the files git would track under portals/)
decides whether to build, and a file lock keeps parallel devhosts from building into one folder.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from devhost.static_site import StaticSite
from shared.config import PROJECT_ROOT, Settings
from shared.http.security import base_headers

log = structlog.get_logger()

PORTALS_DIR = PROJECT_ROOT / "portals"
WEB_DIR = PORTALS_DIR / "web"
OUT_DIR = WEB_DIR / "out"
STAMP_FILE = OUT_DIR / ".source-stamp"
_SKIP_DIRS = {"node_modules", ".next", "out"}
_SKIP_FILES = {"next-env.d.ts", "tsconfig.tsbuildinfo", ".build.lock"}
BUILD_TIMEOUT_SECONDS = 600


class PortalBuildError(RuntimeError):
    """The portals could not be built; the message says what to do."""


def source_files(root: Path = PORTALS_DIR) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        files += [Path(dirpath) / name for name in sorted(filenames) if name not in _SKIP_FILES]
    return files


def source_stamp(root: Path = PORTALS_DIR) -> str:
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_built(root: Path = PORTALS_DIR) -> bool:
    """Build the static export unless the stamp says it matches the sources; True when it built."""
    out_dir = root / "web" / "out"
    stamp_file = out_dir / ".source-stamp"
    want = source_stamp(root)
    if _read(stamp_file) == want:
        return False
    with (root / "web" / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel devhost may be building: wait, then look again
        if _read(stamp_file) == want:
            return False
        npm = shutil.which("npm")
        if npm is None or not (root / "node_modules" / ".bin" / "next").exists():
            raise PortalBuildError("the portals' npm packages are missing: run devhost/setup.sh")
        log.info("building the portals", reason="sources changed" if stamp_file.exists() else "first start")
        env = {**os.environ, "NEXT_TELEMETRY_DISABLED": "1"}
        try:
            done = subprocess.run(  # noqa: S603  (npm from PATH, fixed arguments)
                [npm, "run", "build", "--silent"],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PortalBuildError(f"the portal build took over {BUILD_TIMEOUT_SECONDS} s") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise PortalBuildError(f"the portal build failed (cd portals && npm run build):\n{tail}")
        stamp_file.write_text(source_stamp(root))  # after the build: next build may touch tsconfig.json
        return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@dataclass
class PortalBuild:
    """A build running in a thread; `wait` blocks until it finished and raises what it raised."""

    root: Path = PORTALS_DIR
    _done: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def start(self) -> PortalBuild:
        threading.Thread(target=self._run, name="portal-build", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            if ensure_built(self.root):
                log.info("portals built", out=str(self.root / "web" / "out"))
        except BaseException as exc:  # reported to every page request, and logged once here
            self._error = exc
            log.error("portals not built", error=str(exc))
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def error(self) -> BaseException | None:
        return self._error


Response = tuple[int, list[tuple[bytes, bytes]], bytes]


def _response(settings: Settings, status: int, body: bytes, content_type: str, cache: str = "no-cache") -> Response:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in base_headers(settings).items()]
    return status, [*headers, (b"content-type", content_type.encode()), (b"cache-control", cache.encode())], body


def portal_config(settings: Settings, host: str) -> dict[str, object]:
    """What the portals read at /portal-config.json: on Azure the deployment writes the same file."""
    authority = settings.PORTAL_OIDC_AUTHORITY or f"http://{host}/auth"
    return {
        "oidc": {
            "authority": authority,
            "client_id": settings.PORTAL_OIDC_CLIENT_ID or settings.AUTH_LOCAL_CLIENT_ID,
            "scope": settings.PORTAL_OIDC_SCOPE,
        }
    }


class PortalSite:
    """The export's pages (each with a CSP made from it, see static_site.py), waiting for a running build."""

    def __init__(
        self, settings: Settings, build: PortalBuild | None, out_dir: Path = OUT_DIR, *, blob_origin: str | None = None
    ) -> None:
        self.settings = settings
        self.build = build
        self.files = StaticSite(out_dir, settings, blob_origin=blob_origin)

    def serve(self, method: str, path: str, host: str) -> Response:
        if method in ("GET", "HEAD") and path == "/portal-config.json":
            body = json.dumps(portal_config(self.settings, host)).encode()
            return _response(self.settings, 200, body, "application/json")
        if self.build is not None and method in ("GET", "HEAD"):
            self.build.wait(BUILD_TIMEOUT_SECONDS)
            if self.build.error is not None:
                page = f"The portals are not available: {self.build.error}\nThe API still answers under /api/.\n"
                return _response(self.settings, 503, page.encode(), "text/plain; charset=utf-8")
        return self.files.answer(method, path)


_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>")
_SRC = re.compile(r'\bsrc="([^"]+)"')


def first_load_js(page: str = "index.html", out_dir: Path = OUT_DIR) -> dict[str, tuple[int, int]]:
    """{script: (bytes, gzipped bytes)} of every script an exported page's HTML loads.

    The noModule polyfills are left out (browsers that run modules never fetch them); gzip at level 9,
    as the gzip-size figures Next.js itself used to print.
    """
    html = (out_dir / page).read_text()
    sizes: dict[str, tuple[int, int]] = {}
    for attrs in _SCRIPT_TAG.findall(html):
        src = _SRC.search(attrs)
        if src is None or "nomodule" in attrs.lower() or src.group(1) in sizes:
            continue
        raw = (out_dir / src.group(1).lstrip("/")).read_bytes()
        sizes[src.group(1)] = (len(raw), len(gzip.compress(raw, compresslevel=9)))
    return sizes
