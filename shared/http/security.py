"""Security headers on every response, CORS from an allow-list, and the portals' Content-Security-Policy.

API responses are JSON or problem+json that a browser never renders as a page, so their CSP
forbids everything (`default-src 'none'`). The portals are a Next.js static export: their only
inline scripts are the ones Next writes into each page (the App Router's
`self.__next_f.push(...)` flight payload and its bootstrap), so a page's CSP allows its own
files plus the SHA-256 of exactly those inline scripts, computed from the page itself.
`<script type="application/json">` (the Pages Router's `__NEXT_DATA__`) is data, not code,
and needs no hash.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, MutableMapping
from html.parser import HTMLParser
from typing import Final
from urllib.parse import urlsplit

from shared.config import Settings

# Two years, the HSTS preload list's minimum is one; subdomains are ours too.
HSTS_VALUE: Final = "max-age=63072000; includeSubDomains"
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Preflight answers may be cached this long by the browser (Chrome caps at 2 h).
CORS_MAX_AGE_SECONDS: Final = 7200
CORS_ALLOWED_METHODS: Final = "GET, POST, PUT, PATCH, DELETE"
CORS_ALLOWED_HEADERS: Final = "authorization, content-type, idempotency-key, x-correlation-id, traceparent"
CORS_EXPOSED_HEADERS: Final = "x-correlation-id, retry-after, location, www-authenticate"

# Script types a browser executes (anything else, e.g. application/json or ld+json, is inert data).
_EXECUTABLE_SCRIPT_TYPES: Final = frozenset({"", "text/javascript", "application/javascript", "module"})


def base_headers(settings: Settings) -> dict[str, str]:
    """Headers every response carries, API or page."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        # frame-ancestors in the CSP supersedes it; kept for browsers that predate CSP 2.
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if settings.APP_ENV == "azure":
        # Only where TLS always fronts us: sent over plain http://localhost it would pin the browser to https.
        headers["Strict-Transport-Security"] = HSTS_VALUE
    return headers


def api_security_headers(settings: Settings) -> dict[str, str]:
    return {**base_headers(settings), "Content-Security-Policy": API_CSP}


def apply_security_headers(headers: MutableMapping[str, str], settings: Settings) -> None:
    """Add the API's security headers to a response, keeping any a handler set on purpose."""
    for name, value in api_security_headers(settings).items():
        if name not in headers:  # response headers compare names case-insensitively
            headers[name] = value


# --- CORS -------------------------------------------------------------------------------


def allowed_origins(settings: Settings) -> frozenset[str]:
    return frozenset(settings.cors_allowed_origins)


def cors_headers(origin: str | None, settings: Settings) -> dict[str, str]:
    """CORS headers for an actual request: only for an allow-listed Origin; none otherwise (the browser refuses)."""
    if not origin or origin not in allowed_origins(settings):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method.upper() == "OPTIONS" and bool(headers.get("access-control-request-method"))


def preflight_headers(origin: str | None, requested_method: str, settings: Settings) -> dict[str, str]:
    """The answer to an OPTIONS preflight; empty (so the browser blocks the call) for a refused origin or method."""
    if not origin or origin not in allowed_origins(settings):
        return {}
    if requested_method.upper() not in {m.strip() for m in CORS_ALLOWED_METHODS.split(",")}:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_ALLOWED_METHODS,
        "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
        "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }


# --- the portals' CSP ---------------------------------------------------------------------


class _InlineCode(HTMLParser):
    """Collects the text of inline executable <script> and of <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)  # hash the bytes as written, as the browser does
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes:
            kind = (attributes.get("type") or "").strip().lower()
            self._open = self.scripts if kind in _EXECUTABLE_SCRIPT_TYPES else None
            if self._open is not None:
                self._open.append("")
        elif tag == "style":
            self._open = self.styles
            self._open.append("")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._open = None


def _sha256_source(code: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"


def inline_hashes(html: str) -> tuple[list[str], list[str]]:
    """CSP hash sources of a page's inline scripts and inline <style> elements, in page order, no repeats."""
    parser = _InlineCode()
    parser.feed(html)
    parser.close()
    scripts = list(dict.fromkeys(_sha256_source(code) for code in parser.scripts))
    styles = list(dict.fromkeys(_sha256_source(code) for code in parser.styles))
    return scripts, styles


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def portal_sources(settings: Settings, *, blob_origin: str | None = None) -> dict[str, list[str]]:
    """Where a portal page may load from besides itself: images from public blob storage, sign-in at the issuer,
    and uploads, which the studio PUTs straight to blob storage with the ticket's SAS URL."""
    images = [o for o in (blob_origin, _origin(settings.STORAGE_PUBLIC_BASE_URL)) if o]
    connect = [o for o in (_origin(settings.AUTH_ISSUER), _origin(settings.PORTAL_OIDC_AUTHORITY), blob_origin) if o]
    return {"img": list(dict.fromkeys(images)), "connect": list(dict.fromkeys(connect))}


def portal_csp(
    html: str,
    settings: Settings,
    *,
    img_sources: Iterable[str] = (),
    connect_sources: Iterable[str] = (),
) -> str:
    """The Content-Security-Policy of one exported portal page."""
    scripts, styles = inline_hashes(html)
    return portal_csp_from_hashes(
        scripts,
        styles,
        img_sources=img_sources,
        connect_sources=connect_sources,
        upgrade_insecure=settings.APP_ENV == "azure",
    )


def portal_csp_from_hashes(
    scripts: Iterable[str],
    styles: Iterable[str],
    *,
    img_sources: Iterable[str] = (),
    connect_sources: Iterable[str] = (),
    upgrade_insecure: bool = False,
) -> str:
    """A portal CSP allowing the given inline-script and <style> hashes (one page, or a whole export)."""
    directives = {
        "default-src": ["'self'"],
        # Chunks come from /_next/static on our origin; inline code only as hashed from the build itself.
        "script-src": ["'self'", *scripts],
        "style-src": ["'self'", *styles],
        # React writes style="" attributes (style props); attributes cannot run script, so they are allowed
        # while <style> elements stay hash-only.
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *img_sources],
        "font-src": ["'self'"],
        "connect-src": ["'self'", *connect_sources],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        # Checkout leaves by a top-level navigation to Stripe, which form-action does not restrict.
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    policy = "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
    if upgrade_insecure:
        policy += "; upgrade-insecure-requests"
    return policy


def portal_headers(html: str | None, settings: Settings, *, blob_origin: str | None = None) -> dict[str, str]:
    """Headers of a portal file: security headers everywhere, and a CSP made for the page on HTML."""
    headers = base_headers(settings)
    if html is not None:
        sources = portal_sources(settings, blob_origin=blob_origin)
        headers["Content-Security-Policy"] = portal_csp(
            html, settings, img_sources=sources["img"], connect_sources=sources["connect"]
        )
    return headers
