"""HTTP triggers behind uvicorn: an ASGI app that turns requests into func.HttpRequest, as the host does."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from uuid import uuid4

import azure.functions as func
import structlog

from devhost.app_loader import HttpFunction, invoke
from shared.config import get_settings
from shared.http import Problem
from shared.http.security import apply_security_headers

if TYPE_CHECKING:
    from devhost.portals import PortalSite

log = structlog.get_logger()
MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's request size limit


def _problem(status: int, slug: str, title: str, detail: str, path: str, headers: dict[str, str] | None = None):
    """The host's own answers (no function matched, body too large), in the app's problem+json shape."""
    response = Problem(status, slug, title, detail, headers=headers).to_response(
        instance=path, correlation_id=str(uuid4())
    )
    apply_security_headers(response.headers, get_settings())
    return _to_asgi(response)


class FunctionsAsgiApp:
    def __init__(
        self, functions: list[HttpFunction], route_prefix: str = "api", site: PortalSite | None = None
    ) -> None:
        self.functions = functions
        self.prefix = "/" + route_prefix.strip("/") + "/"
        self.site = site  # the portals' static pages, on the same origin as the API

    def match(self, method: str, path: str) -> tuple[HttpFunction | None, dict[str, str], frozenset[str]]:
        """The function for a path, its route params, and every method the path answers to (for 405)."""
        if not path.startswith(self.prefix):
            return None, {}, frozenset()
        rest = path[len(self.prefix) :]
        allowed: set[str] = set()
        for fn in self.functions:
            m = fn.pattern.match(rest)
            if m is None:
                continue
            if method in fn.methods:
                return fn, {k: v for k, v in m.groupdict().items() if v is not None}, fn.methods
            allowed |= fn.methods
        return None, {}, frozenset(allowed)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, headers, body = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: dict[str, Any], receive: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        method = scope["method"].upper()
        path = scope["path"]
        if self.site is not None and not (path + "/").startswith(self.prefix):
            host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
            return await asyncio.to_thread(self.site.serve, method, path, host)
        fn, route_params, allowed = self.match(method, path)
        if fn is None:
            # The CORS preflight answers OPTIONS on every path: a path nothing else serves is still a 404.
            if allowed - {"OPTIONS"}:
                allow = {"Allow": ", ".join(sorted(allowed))}
                return _problem(
                    405, "method-not-allowed", "Method not allowed", f"{method} is not allowed here", path, allow
                )
            return _problem(404, "not-found", "Not found", f"No function serves {path}.", path)

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _problem(413, "body-too-large", "Payload too large", "The request body exceeds 100 MB.", path)
            chunks.append(chunk)
            if not message.get("more_body"):
                break

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        if client:
            # Like Azure's front end: append the peer we saw, so the rightmost hop is one a client cannot forge.
            prior = headers.get("x-forwarded-for")
            headers["x-forwarded-for"] = f"{prior}, {client[0]}" if prior else client[0]
            headers["x-client-ip"] = client[0]
        host = headers.get("host", "localhost")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"http://{host}{scope['path']}" + (f"?{query}" if query else "")
        request = func.HttpRequest(
            method=method,
            url=url,
            headers=headers,
            params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params=route_params,
            body=b"".join(chunks),
        )
        try:
            response = await invoke(fn, request)
            if isinstance(response, str):
                response = func.HttpResponse(response)
        except Exception:
            log.exception("http function failed", function=fn.name)
            return _problem(500, "internal-error", "Internal server error", "The function failed.", path)
        return _to_asgi(response)


def _to_asgi(response: func.HttpResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    if response.mimetype and not any(k == b"content-type" for k, _ in headers):
        ctype = response.mimetype + (f"; charset={response.charset}" if response.charset else "")
        headers.append((b"content-type", ctype.encode("latin-1")))
    return response.status_code, headers, response.get_body() or b""
