"""The `api` decorator and the life of one request through the edge."""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final
from urllib.parse import urlsplit

import azure.functions as func
import structlog
from opentelemetry import trace
from pydantic import BaseModel

from shared.auth import (
    KeySourceUnavailable,
)
from shared.config import Settings
from shared.http.access import _anonymous_route_limit, _authenticate, _authorize, _rate_limit, client_ip
from shared.http.context import _settings
from shared.http.openapi import _ERROR_RESPONSES
from shared.http.parsing import _parse_body, _parse_query
from shared.http.problems import ApiResponse, Problem, _http_response, _to_json
from shared.http.routing import _METHODS, ROUTES, Access, ApiRequest, Handler, RouteSpec, _role_rule
from shared.http.security import (
    api_security_headers,
    apply_security_headers,
    cors_headers,
    is_preflight,
    preflight_headers,
)
from shared.outages import is_dependency_outage
from shared.telemetry import context_from, tracer, tracing_enabled

log = structlog.get_logger(__name__)

CORRELATION_HEADER: Final = "x-correlation-id"
AUTH_RETRY_AFTER_SECONDS: Final = 30
OUTAGE_RETRY_AFTER_SECONDS: Final = 5  # a restarting database or storage is usually back within seconds
_CORRELATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def api(
    bp: func.Blueprint,
    method: str,
    route: str,
    *,
    roles: Access | set[str] | frozenset[str],
    summary: str,
    name: str | None = None,
    query_model: type[BaseModel] | None = None,
    body_model: type[BaseModel] | None = None,
    response_model: type[BaseModel] | None = None,
    status: int = 200,
    also_status: Iterable[int] = (),
    tags: Iterable[str] | None = None,
    rate_limited: bool = True,
    anonymous_limit: str | None = None,
    required_headers: Iterable[str] = (),
    errors: Iterable[int] = (),
    raw_body: Iterable[str] = (),
) -> Callable[[Handler], Handler]:
    """Declare an HTTP function on `bp`; returns the handler unchanged so tests can call it directly."""
    rule = _role_rule(roles)
    method = method.upper()
    if method not in _METHODS:
        raise ValueError(f"unsupported HTTP method {method!r}")
    route = route.strip("/")
    if route == "api" or route.startswith("api/"):
        raise ValueError("routes are relative to the /api prefix; drop the leading 'api/'")
    if not summary:
        raise ValueError("every route needs a summary (it is the OpenAPI operation summary)")
    if not 200 <= status <= 399:
        raise ValueError("status is the success status (2xx, or 3xx for a redirect); raise Problem for errors")
    if body_model is not None and raw_body:
        raise ValueError("a route reads either a JSON body (body_model) or a raw body (raw_body), not both")
    errors = tuple(sorted(set(errors)))
    unknown = [code for code in errors if str(code) not in _ERROR_RESPONSES]
    if unknown:
        raise ValueError(f"undocumentable error statuses {unknown}; known: {sorted(_ERROR_RESPONSES)}")
    if anonymous_limit is not None:
        field = Settings.model_fields.get(anonymous_limit)
        if field is None or field.annotation is not int:
            raise ValueError(f"anonymous_limit names an int setting of shared.config.Settings; got {anonymous_limit!r}")
        if not rate_limited:
            raise ValueError("a route with an anonymous_limit is rate limited")
    for model in (query_model, body_model, response_model):
        if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{model!r} must be a pydantic BaseModel subclass")

    def decorate(handler: Handler) -> Handler:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler.__qualname__} must be an async def handler")
        spec = RouteSpec(
            method=method,
            route=route,
            name=name or handler.__name__,
            roles=rule,
            summary=summary,
            query_model=query_model,
            body_model=body_model,
            response_model=response_model,
            status=status,
            also_status=tuple(sorted(set(also_status))),
            tags=tuple(tags or ()),
            rate_limited=rate_limited,
            anonymous_limit=anonymous_limit,
            required_headers=tuple(required_headers),
            errors=errors,
            raw_body=tuple(raw_body),
        )
        for other in ROUTES:
            if other.name == spec.name or (other.method, other.path) == (spec.method, spec.path):
                raise ValueError(f"route {spec.method} {spec.path} ({spec.name}) is already declared")
        entry = _entry_point(spec, handler)
        bp.function_name(name=spec.name)(
            bp.route(route=route, methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(entry)
        )
        ROUTES.append(spec)
        return handler

    return decorate


def _entry_point(spec: RouteSpec, handler: Handler) -> Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]:
    async def entry(req: func.HttpRequest) -> func.HttpResponse:
        return await _serve(spec, handler, req)

    # The Python worker indexes this function by its signature: one parameter
    # named `req` (the trigger binding) annotated func.HttpRequest, returning
    # func.HttpResponse. So no functools.wraps: its __wrapped__ would make
    # inspect.signature report the handler's parameters instead. Annotations are
    # set to real classes because this module uses postponed annotations.
    entry.__name__ = handler.__name__
    entry.__qualname__ = handler.__qualname__
    entry.__module__ = handler.__module__
    entry.__doc__ = handler.__doc__
    entry.__annotations__ = {"req": func.HttpRequest, "return": func.HttpResponse}
    entry.route_spec = spec  # type: ignore[attr-defined]
    return entry


# --- one request ----------------------------------------------------------------------


async def _serve(spec: RouteSpec, handler: Handler, req: func.HttpRequest) -> func.HttpResponse:
    started = time.perf_counter()
    correlation_id = correlation_id_from(req.headers)
    instance = urlsplit(req.url).path or "/"
    with (
        structlog.contextvars.bound_contextvars(correlation_id=correlation_id, function=spec.name, sub=None),
        _server_span(spec, req) as span,
    ):
        try:
            response = await _dispatch(spec, handler, req, correlation_id)
        except Problem as problem:
            response = problem.to_response(instance=instance, correlation_id=correlation_id)
        except KeySourceUnavailable:
            log.exception("http.auth_keys_unavailable")
            response = Problem(
                503,
                "auth-unavailable",
                "Sign-in is temporarily unavailable",
                "The identity provider's keys could not be fetched; try again shortly.",
                headers={"Retry-After": str(AUTH_RETRY_AFTER_SECONDS)},
            ).to_response(instance=instance, correlation_id=correlation_id)
        except Exception as exc:
            if is_dependency_outage(exc):
                # The database or storage is restarting or unreachable: "try again", so clients
                # (and Stripe, for webhooks) retry instead of reporting a bug.
                log.warning("http.dependency_unavailable", error=f"{type(exc).__name__}: {exc}"[:500])
                response = Problem(
                    503,
                    "service-unavailable",
                    "Temporarily unavailable",
                    "A service this request needs is unreachable; try again in a few seconds.",
                    headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
                ).to_response(instance=instance, correlation_id=correlation_id)
            else:
                # Log the stack with the correlation id; tell the caller only that id.
                log.exception("http.unhandled_error")
                response = Problem(
                    500,
                    "internal-error",
                    "Internal server error",
                    "An unexpected error occurred. Quote the correlation_id when reporting it.",
                ).to_response(instance=instance, correlation_id=correlation_id)
        _finish(response, req, correlation_id)
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(trace.StatusCode.ERROR)
        log.info(
            "http.request",
            method=req.method,
            path=instance,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response


def _server_span(spec: RouteSpec, req: func.HttpRequest) -> AbstractContextManager[trace.Span]:
    if not tracing_enabled():  # no exporter: a span would cost CPU on every request and go nowhere
        return nullcontext(trace.INVALID_SPAN)
    return tracer.start_as_current_span(
        f"{spec.method} /api/{spec.route}",
        context=context_from(req.headers),  # joins the caller's trace when it sent traceparent
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": spec.method, "http.route": f"/api/{spec.route}"},
    )


async def _dispatch(spec: RouteSpec, handler: Handler, req: func.HttpRequest, correlation_id: str) -> func.HttpResponse:
    principal, auth_problem = await _authenticate(req)
    if principal is not None:
        structlog.contextvars.bind_contextvars(sub=principal.sub)
    ip = client_ip(req.headers, _settings().TRUSTED_PROXY_HOPS)
    # Limit before reporting a bad token, so guessing tokens is throttled per IP too.
    if spec.rate_limited:
        await _rate_limit(principal, ip)
        await _anonymous_route_limit(spec, principal, ip)
    if auth_problem is not None:
        raise auth_problem
    _authorize(spec, principal)
    _require_headers(spec, req)
    request = ApiRequest(
        http=req,
        correlation_id=correlation_id,
        principal=principal,
        client_ip=ip,
        path_params=dict(req.route_params or {}),
        query=_parse_query(spec.query_model, req) if spec.query_model else None,
        body=_parse_body(spec.body_model, req) if spec.body_model else None,
    )
    return _to_response(spec, await handler(request))


def _require_headers(spec: RouteSpec, req: func.HttpRequest) -> None:
    missing = [name for name in spec.required_headers if not req.headers.get(name)]
    if missing:
        raise Problem(
            400,
            "missing-header",
            "Required header missing",
            f"The request needs the header {missing[0]}.",
            errors=[{"name": name, "in": "header", "reason": "required"} for name in missing],
        )


def _finish(response: func.HttpResponse, req: func.HttpRequest, correlation_id: str) -> None:
    headers = response.headers
    headers[CORRELATION_HEADER] = correlation_id
    settings = _settings()
    apply_security_headers(headers, settings)
    # Refused origins get no CORS headers at all: the browser then withholds the response from the page.
    for name, value in cors_headers(req.headers.get("origin"), settings).items():
        headers[name] = value
    # Nothing personal or erroneous may sit in a shared cache.
    if "cache-control" not in headers and (response.status_code >= 400 or "authorization" in req.headers):
        headers["Cache-Control"] = "no-store"


def cors_preflight(bp: func.Blueprint) -> None:
    """Answer CORS preflights (OPTIONS with Access-Control-Request-Method) for every /api path.

    Not an `api` route: a preflight carries no credentials and reaches no handler, so it has no roles
    to check and no operation to document. An allow-listed origin gets the CORS grant; any other
    gets 204 without CORS headers, which the browser treats as a refusal.
    """

    async def cors_preflight(req: func.HttpRequest) -> func.HttpResponse:
        settings = _settings()
        headers = api_security_headers(settings)
        if is_preflight(req.method, req.headers):
            headers |= preflight_headers(
                req.headers.get("origin"), req.headers.get("access-control-request-method", ""), settings
            )
        return func.HttpResponse(status_code=204, headers=headers)

    # The worker indexes by real annotation classes (this module postpones annotations).
    cors_preflight.__annotations__ = {"req": func.HttpRequest, "return": func.HttpResponse}
    bp.function_name(name="cors_preflight")(
        bp.route(route="{*path}", methods=["OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)(cors_preflight)
    )


def correlation_id_from(headers: Mapping[str, str]) -> str:
    """The caller's x-correlation-id, else the W3C traceparent's trace id, else a new id.

    Incoming values are checked against a strict pattern because they end up in
    logs and response headers.
    """
    given = (headers.get(CORRELATION_HEADER) or "").strip()
    if _CORRELATION_RE.fullmatch(given):
        return given
    match = _TRACEPARENT_RE.fullmatch((headers.get("traceparent") or "").strip())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return str(uuid.uuid4())


def _to_response(spec: RouteSpec, result: Any) -> func.HttpResponse:
    if isinstance(result, func.HttpResponse):
        return result  # escape hatch (redirects, streams) for handlers that need it
    if isinstance(result, ApiResponse):
        return result.to_http()
    if result is None:
        return func.HttpResponse(status_code=204 if spec.status == 200 else spec.status)
    if spec.response_model is not None and not isinstance(result, spec.response_model):
        # Validating through the declared model also drops fields it doesn't
        # declare, so internal columns can't leak into a response.
        result = spec.response_model.model_validate(result, from_attributes=True)
    return _http_response(_to_json(result), spec.status, "application/json")


# --- OpenAPI ---------------------------------------------------------------------------
