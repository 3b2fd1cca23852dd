"""The HTTP edge: one decorator, `api`, that every HTTP-triggered function is declared with.

    bp = func.Blueprint()

    @api(bp, "GET", "me", roles=SIGNED_IN, summary="The caller's id and roles", response_model=MeOut)
    async def me(request: ApiRequest) -> MeOut: ...

For each request the generated Functions entry point does, in this order:
correlation id -> CORS preflight -> bearer token -> rate limit -> role check ->
query/body validation -> handler -> JSON or problem+json (RFC 9457) response
-> security and CORS headers. Auth is ours (AuthLevel.ANONYMOUS to the
Functions host), and a route cannot be declared without a role rule, so no
endpoint is open by omission.

Every route is also recorded in `ROUTES`, from which `build_openapi` writes
the OpenAPI 3.1 document and tests check the role matrix.

The modules: `problems` (problem+json and plain responses), `routing` (route
specs, roles, the request a handler gets), `context` (settings, validator and
limiter the edge uses), `access` (authentication, authorization, client
address, rate limits), `parsing` (input validation), `security` (security
headers, CORS), `edge` (the decorator and one request), `openapi`.
"""

from __future__ import annotations

from shared.http.access import CLIENT_IP_HEADER, RATE_PERIOD_SECONDS, client_ip
from shared.http.context import BearerValidator, configure_http, reset_http
from shared.http.edge import AUTH_RETRY_AFTER_SECONDS, CORRELATION_HEADER, api, correlation_id_from, cors_preflight
from shared.http.openapi import build_openapi
from shared.http.parsing import MAX_JSON_BODY_BYTES
from shared.http.problems import PROBLEM_TYPE_BASE, REALM, ApiResponse, Problem
from shared.http.routing import ANYONE, ROUTES, SIGNED_IN, Access, ApiRequest, Handler, IsoDateTime, RouteSpec

__all__ = [
    "ANYONE",
    "AUTH_RETRY_AFTER_SECONDS",
    "CLIENT_IP_HEADER",
    "CORRELATION_HEADER",
    "MAX_JSON_BODY_BYTES",
    "PROBLEM_TYPE_BASE",
    "RATE_PERIOD_SECONDS",
    "REALM",
    "ROUTES",
    "SIGNED_IN",
    "Access",
    "ApiRequest",
    "ApiResponse",
    "BearerValidator",
    "Handler",
    "IsoDateTime",
    "Problem",
    "RouteSpec",
    "api",
    "build_openapi",
    "client_ip",
    "configure_http",
    "correlation_id_from",
    "cors_preflight",
    "reset_http",
]
