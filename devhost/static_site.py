"""The portals' static export (Next.js `output: 'export'`) served at `/`, beside `/api`, with their security headers.

Each HTML page gets a Content-Security-Policy computed from that page (the hashes of the inline
scripts Next wrote into it), so the policy allows exactly what the build emitted and nothing an
attacker could inject later. Files are read per request: a rebuild shows without a restart.
"""

from __future__ import annotations

import mimetypes
from functools import lru_cache
from pathlib import Path

from shared.config import PROJECT_ROOT, Settings
from shared.http.security import portal_headers

# Where the portals' workspace writes its export (portals/web with `next build`).
DEFAULT_EXPORT_DIR = PROJECT_ROOT / "portals" / "web" / "out"

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


@lru_cache(maxsize=256)
def _csp_headers(html: str, settings: Settings, blob_origin: str | None) -> tuple[tuple[str, str], ...]:
    # Keyed by the page's text, so a rebuilt page gets a fresh policy and an unchanged one costs nothing.
    return tuple(portal_headers(html, settings, blob_origin=blob_origin).items())


class StaticSite:
    def __init__(self, root: Path, settings: Settings, *, blob_origin: str | None = None) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.blob_origin = blob_origin

    def resolve(self, url_path: str) -> Path | None:
        """The file for a URL path, Next's export layout (`/a/` -> a/index.html, `/a` -> a.html), never outside root."""
        relative = url_path.lstrip("/")
        # ".." escapes the export; dot-files (the build's source stamp) are not part of the site.
        if "\x00" in relative or any(part.startswith(".") for part in relative.split("/")):
            return None
        candidates = [self.root / relative / "index.html"] if relative.endswith("/") or not relative else []
        candidates += [self.root / relative, self.root / f"{relative}.html", self.root / relative / "index.html"]
        for candidate in candidates:
            path = candidate.resolve()
            if path.is_file() and path.is_relative_to(self.root):
                return path
        return None

    def answer(self, method: str, url_path: str) -> Answer:
        if method not in ("GET", "HEAD"):
            return self._plain(405, b"Method not allowed\n", extra=[(b"allow", b"GET, HEAD")])
        path = self.resolve(url_path)
        status = 200
        if path is None:
            status, path = 404, self.resolve("/404.html")
            if path is None:
                return self._plain(404, b"Not found\n")
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        is_html = content_type == "text/html"
        if is_html:
            headers = dict(_csp_headers(body.decode("utf-8", "replace"), self.settings, self.blob_origin))
        else:
            headers = portal_headers(None, self.settings)
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        headers["Content-Type"] = content_type
        # Next fingerprints everything under /_next/static; pages must be revalidated to pick up a new build.
        immutable = url_path.startswith("/_next/static/")
        headers["Cache-Control"] = "public, max-age=31536000, immutable" if immutable else "no-cache"
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        return status, encoded, b"" if method == "HEAD" else body

    def _plain(self, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Answer:
        headers = [(k.lower().encode(), v.encode()) for k, v in portal_headers(None, self.settings).items()]
        headers += [(b"content-type", b"text/plain; charset=utf-8"), *(extra or [])]
        return status, headers, body
