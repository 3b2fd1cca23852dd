"""The HTTP edge: one decorator, `api`, that every HTTP-triggered function is declared with.

    bp = func.Blueprint()

    @api(bp, "GET", "me", roles=SIGNED_IN, summary="The caller's id and roles", response_model=MeOut)
    async def me(request: ApiRequest) -> MeOut: ...

For each request the generated Functions entry point does, in this order:
correlation id -> bearer token -> rate limit -> role check -> query/body
validation -> handler -> JSON or problem+json (RFC 9457) response. Auth is
ours (AuthLevel.ANONYMOUS to the Functions host), and a route cannot be
declared without a role rule, so no endpoint is open by omission.

Every route is also recorded in `ROUTES`, from which `build_openapi` writes
the OpenAPI 3.1 document and tests check the role matrix.
"""

from __future__ import annotations

import inspect
import ipaddress
import json
import re
import threading
import time
import types
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any, Final, Protocol, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pydantic_core
import structlog
from opentelemetry import trace
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ValidationError
from pydantic.json_schema import models_json_schema

from shared.auth import (
    KNOWN_ROLES,
    InMemoryRateLimiter,
    InvalidToken,
    KeySourceUnavailable,
    Principal,
    RateLimiter,
    validator_from_settings,
)
from shared.config import Settings, get_settings
from shared.outages import is_dependency_outage
from shared.telemetry import configure_telemetry, context_from, tracer

log = structlog.get_logger(__name__)

PROBLEM_TYPE_BASE: Final = "https://stock-marketplace.example/problems/"
CORRELATION_HEADER: Final = "x-correlation-id"
# Set by devhost to the socket peer's address, and by Azure's front end; only
# read when X-Forwarded-For is absent.
CLIENT_IP_HEADER: Final = "x-client-ip"
REALM: Final = "stock-marketplace"
MAX_JSON_BODY_BYTES: Final = 1024 * 1024
RATE_PERIOD_SECONDS: Final = 60.0
AUTH_RETRY_AFTER_SECONDS: Final = 30
OUTAGE_RETRY_AFTER_SECONDS: Final = 5  # a restarting database or storage is usually back within seconds

_CORRELATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_TRACEPARENT_RE = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ROUTE_PARAM_RE = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\??\}")
_METHODS = frozenset(method.value for method in func.HttpMethod)


# --- shared parameter types ------------------------------------------------------


def _iso_datetime(value: Any) -> Any:
    # pydantic would also take a number as a Unix time; the API documents ISO 8601 only.
    if isinstance(value, datetime) or (isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value)):
        return value
    raise ValueError("expected an ISO 8601 date-time with a time zone, e.g. 2026-11-01T09:30:00Z")


# A date-time in a query or body: ISO 8601 with a time zone, never a bare number.
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]


# --- who may call --------------------------------------------------------------


class Access(StrEnum):
    ANYONE = "anyone"
    SIGNED_IN = "signed-in"


ANYONE: Final = Access.ANYONE
SIGNED_IN: Final = Access.SIGNED_IN
RoleRule = Access | frozenset[str]


def _role_rule(roles: object) -> RoleRule:
    if isinstance(roles, Access):
        return roles
    if isinstance(roles, str) or not isinstance(roles, set | frozenset | list | tuple):
        # A bare "admin" would iterate as letters; insist on a set.
        raise TypeError("roles must be ANYONE, SIGNED_IN or a set of role names, e.g. {'admin'}")
    rule = frozenset(roles)
    unknown = rule - KNOWN_ROLES
    if not rule or unknown:
        raise ValueError(f"roles must be a non-empty subset of {sorted(KNOWN_ROLES)}; got {sorted(rule)}")
    return rule


# --- requests, responses, problems -------------------------------------------


class Problem(Exception):
    """An error answered as application/problem+json (RFC 9457).

    `type_slug` names the kind of problem and becomes a stable URI that clients
    may switch on; `extensions` are extra members (e.g. `errors`). `headers`
    is sent with the response (e.g. Retry-After).
    """

    _RESERVED = frozenset({"type", "title", "status", "detail", "instance", "correlation_id"})

    def __init__(
        self,
        status: int,
        type_slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError("a problem's status must be 4xx or 5xx")
        if not _SLUG_RE.fullmatch(type_slug):
            raise ValueError(f"problem type slug must be lowercase-kebab-case, got {type_slug!r}")
        if clash := self._RESERVED & extensions.keys():
            raise ValueError(f"extension members may not redefine {sorted(clash)}")
        super().__init__(f"{status} {type_slug}: {detail or title}")
        self.status = status
        self.type_slug = type_slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.type_slug

    def to_dict(self, *, instance: str, correlation_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type_uri, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        return {**body, "instance": instance, "correlation_id": correlation_id, **self.extensions}

    def to_response(self, *, instance: str, correlation_id: str) -> func.HttpResponse:
        body = pydantic_core.to_json(self.to_dict(instance=instance, correlation_id=correlation_id))
        return _http_response(body, self.status, "application/problem+json", self.headers)


@dataclass
class ApiResponse:
    """Full control of the response: any status, headers and body.

    A pydantic model, dict or list body is sent as JSON; str as text/plain;
    bytes as application/octet-stream unless `content_type` says otherwise.
    """

    status: int
    body: Any = None
    headers: Mapping[str, str] | None = None
    content_type: str | None = None

    def to_http(self) -> func.HttpResponse:
        body, content_type = self.body, self.content_type
        if body is None:
            payload, content_type = b"", content_type or "text/plain; charset=utf-8"
        elif isinstance(body, bytes):
            payload, content_type = body, content_type or "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), content_type or "text/plain; charset=utf-8"
        else:
            payload, content_type = _to_json(body), content_type or "application/json"
        return _http_response(payload, self.status, content_type, self.headers or {})


@dataclass(frozen=True)
class RouteSpec:
    method: str
    route: str
    name: str
    roles: RoleRule
    summary: str
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status: int = 200
    tags: tuple[str, ...] = ()
    rate_limited: bool = True
    # Request headers the route cannot work without (documented; a request lacking one gets 400).
    required_headers: tuple[str, ...] = ()
    # Problem statuses the handler itself raises (404, 409, ...), documented in OpenAPI.
    errors: tuple[int, ...] = ()
    # Media types of a raw (non-JSON) body the handler reads itself, e.g. an uploaded picture.
    raw_body: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The OpenAPI path: /api prefix, Functions constraints ({id:guid}, {id?}) stripped."""
        return "/api/" + _ROUTE_PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", self.route)

    def allows(self, principal: Principal | None) -> bool:
        if self.roles is ANYONE:
            return True
        if principal is None:
            return False
        return self.roles is SIGNED_IN or principal.has_any_role(self.roles)


@dataclass
class ApiRequest:
    """What a handler gets: the raw request plus everything the edge already checked."""

    http: func.HttpRequest
    correlation_id: str
    principal: Principal | None
    client_ip: str
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Any = None  # an instance of the route's query_model, if it has one
    body: Any = None  # an instance of the route's body_model, if it has one

    @property
    def method(self) -> str:
        return self.http.method

    @property
    def path(self) -> str:
        return urlsplit(self.http.url).path

    @property
    def headers(self) -> Mapping[str, str]:
        return self.http.headers

    def require_principal(self) -> Principal:
        """The caller; on SIGNED_IN and role routes the edge guarantees there is one."""
        if self.principal is None:
            raise _unauthenticated()
        return self.principal


Handler = Callable[[ApiRequest], Awaitable[Any]]
ROUTES: list[RouteSpec] = []


# --- process-wide collaborators --------------------------------------------------


class BearerValidator(Protocol):
    async def validate(self, token: str) -> Principal: ...


@dataclass
class _Edge:
    settings: Settings | None = None
    validator: BearerValidator | None = None
    limiter: RateLimiter | None = None


_edge = _Edge()
_edge_lock = threading.Lock()


def configure_http(
    *,
    validator: BearerValidator | None = None,
    limiter: RateLimiter | None = None,
    settings: Settings | None = None,
) -> None:
    """Replace the lazily built defaults (tests, devhost). Arguments left None keep their current value."""
    with _edge_lock:
        if settings is not None:
            _edge.settings = settings
        if validator is not None:
            _edge.validator = validator
        if limiter is not None:
            _edge.limiter = limiter


def reset_http() -> None:
    """Forget configured collaborators; the next request builds the defaults again."""
    with _edge_lock:
        _edge.settings = _edge.validator = _edge.limiter = None


def _settings() -> Settings:
    with _edge_lock:
        if _edge.settings is None:
            _edge.settings = get_settings()
            # The first request may arrive before anything built the runtime: log as JSON and trace from it.
            configure_telemetry(_edge.settings)
        return _edge.settings


def _validator() -> BearerValidator:
    settings = _settings()
    with _edge_lock:
        if _edge.validator is None:
            _edge.validator = validator_from_settings(settings)
        return _edge.validator


def _limiter() -> RateLimiter:
    with _edge_lock:
        if _edge.limiter is None:
            _edge.limiter = InMemoryRateLimiter()
        return _edge.limiter


# --- the decorator --------------------------------------------------------------------


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
    tags: Iterable[str] | None = None,
    rate_limited: bool = True,
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
            tags=tuple(tags or ()),
            rate_limited=rate_limited,
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
        tracer.start_as_current_span(
            f"{spec.method} /api/{spec.route}",
            context=context_from(req.headers),  # joins the caller's trace when it sent traceparent
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": spec.method, "http.route": f"/api/{spec.route}"},
        ) as span,
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


async def _dispatch(spec: RouteSpec, handler: Handler, req: func.HttpRequest, correlation_id: str) -> func.HttpResponse:
    principal, auth_problem = await _authenticate(req)
    if principal is not None:
        structlog.contextvars.bind_contextvars(sub=principal.sub)
    ip = client_ip(req.headers, _settings().TRUSTED_PROXY_HOPS)
    # Limit before reporting a bad token, so guessing tokens is throttled per IP too.
    if spec.rate_limited:
        await _rate_limit(principal, ip)
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
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # Nothing personal or erroneous may sit in a shared cache.
    if "cache-control" not in headers and (response.status_code >= 400 or "authorization" in req.headers):
        headers["Cache-Control"] = "no-store"


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


# --- authentication, authorization, rate limits ------------------------------------


def _www_authenticate(error: str | None = None, description: str | None = None) -> str:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    if description:
        value += f', error_description="{description}"'
    return value


def _unauthenticated() -> Problem:
    # RFC 6750 3.1: no error code when the request carried no credentials at all.
    return Problem(
        401,
        "unauthenticated",
        "Sign-in required",
        "This endpoint needs a bearer token.",
        headers={"WWW-Authenticate": _www_authenticate()},
    )


def _invalid_token(reason: str) -> Problem:
    return Problem(
        401,
        "invalid-token",
        "Invalid bearer token",
        f"The bearer token was refused: {reason}.",
        headers={"WWW-Authenticate": _www_authenticate("invalid_token", reason)},
        reason=reason,
    )


async def _authenticate(req: func.HttpRequest) -> tuple[Principal | None, Problem | None]:
    """The principal, or the 401 to answer. A token that is present but bad is refused on every route."""
    header = req.headers.get("authorization")
    if header is None:
        return None, None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None, Problem(
            401,
            "invalid-token",
            "Invalid authorization header",
            "Send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": _www_authenticate("invalid_request", "bearer_scheme_required")},
            reason="invalid_request",
        )
    try:
        return await _validator().validate(token), None
    except InvalidToken as exc:
        log.info("http.token_refused", reason=str(exc.reason))
        return None, _invalid_token(str(exc.reason))


def _authorize(spec: RouteSpec, principal: Principal | None) -> None:
    if spec.allows(principal):
        return
    if principal is None:
        raise _unauthenticated()
    needed = ", ".join(sorted(spec.roles))  # type: ignore[arg-type]  # a role set here
    raise Problem(
        403,
        "forbidden",
        "Not allowed",
        f"This endpoint needs one of these roles: {needed}.",
        headers={"WWW-Authenticate": _www_authenticate("insufficient_scope")},
    )


def client_ip(headers: Mapping[str, str], trusted_proxy_hops: int = 1) -> str:
    """The client's address as our own proxies saw it.

    Each proxy appends the peer it saw to X-Forwarded-For, so only the rightmost `trusted_proxy_hops`
    entries were written by infrastructure we trust (Azure's front end: 1; Front Door in front: 2).
    Anything further left came from the client and could be forged to dodge the per-IP limit.
    """
    hops = [h for h in (headers.get("x-forwarded-for") or "").split(",") if h.strip()]
    forwarded = hops[-trusted_proxy_hops] if len(hops) >= trusted_proxy_hops else (hops[0] if hops else "")
    for candidate in (forwarded, headers.get(CLIENT_IP_HEADER) or ""):
        ip = _parse_ip(candidate)
        if ip is not None:
            return ip
    return "unknown"


def _parse_ip(raw: str) -> str | None:
    raw = raw.strip()
    if raw.startswith("["):  # "[v6]:port"
        raw = raw[1 : raw.find("]")]
    elif raw.count(":") == 1:  # "v4:port" (Azure's front end appends the port)
        raw = raw.split(":")[0]
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _ip_rate_key(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "ip:unknown"
    if address.version == 6:
        # One IPv6 host typically owns a whole /64; limiting single addresses would be trivial to dodge.
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


async def _rate_limit(principal: Principal | None, ip: str) -> None:
    settings = _settings()
    if principal is not None:
        key, limit = f"principal:{principal.sub}", settings.RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE
    else:
        key, limit = _ip_rate_key(ip), settings.RATE_LIMIT_PER_IP_PER_MINUTE
    decision = await _limiter().hit(key, limit=limit, period=RATE_PERIOD_SECONDS)
    if not decision.allowed:
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"Slow down; retry in {decision.retry_after_header} s.",
            headers={"Retry-After": decision.retry_after_header},
            retry_after=int(decision.retry_after_header),
        )


# --- input ----------------------------------------------------------------------------


def _field_errors(exc: ValidationError, where: str) -> list[dict[str, str]]:
    # Name and reason only: echoing the rejected input could reflect secrets or markup.
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err["loc"]
        name = str(loc[0]) if where == "query" and loc else ".".join(str(part) for part in loc)
        errors.append({"name": name or "(body)", "in": where, "reason": err["msg"]})
    return errors


def _is_multi(annotation: Any) -> bool:
    """Whether a query field takes repeated parameters (?tag=a&tag=b)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_multi(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_multi(arg) for arg in get_args(annotation) if arg is not type(None))
    return (origin or annotation) in (list, set, frozenset, tuple)


def _query_items(req: func.HttpRequest) -> list[tuple[str, str]]:
    # The worker flattens repeated parameters in req.params, so read the URL;
    # fall back to req.params for names missing from it.
    items = parse_qsl(urlsplit(req.url).query, keep_blank_values=True)
    seen = {name for name, _ in items}
    items.extend((name, value) for name, value in (req.params or {}).items() if name not in seen)
    for name, value in items:
        if "\x00" in name or "\x00" in value:
            # PostgreSQL text cannot hold NUL: refuse it here rather than fail deep inside a query.
            raise Problem(
                400,
                "invalid-query",
                "Invalid query parameters",
                f"Check: {name.replace(chr(0), '')}.",
                errors=[{"name": name.replace("\x00", ""), "in": "query", "reason": "contains a NUL character"}],
            )
    return items


def _parse_query(model: type[BaseModel], req: func.HttpRequest) -> BaseModel:
    multi = set()
    for field_name, info in model.model_fields.items():
        if _is_multi(info.annotation):
            multi |= {field_name, info.alias or field_name}
    values: dict[str, list[str]] = {}
    for name, value in _query_items(req):
        values.setdefault(name, []).append(value)
    data = {name: vals if name in multi or len(vals) > 1 else vals[0] for name, vals in values.items()}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc, "query")
        names = ", ".join(sorted({e["name"] for e in errors}))
        raise Problem(400, "invalid-query", "Invalid query parameters", f"Check: {names}.", errors=errors) from None


def _parse_body(model: type[BaseModel], req: func.HttpRequest) -> BaseModel:
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not (content_type == "application/json" or re.fullmatch(r"application/[\w.+-]+\+json", content_type)):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
            headers={"Accept": "application/json"},
        )
    raw = req.get_body() or b""
    if len(raw) > MAX_JSON_BODY_BYTES:
        raise Problem(
            413, "body-too-large", "Body too large", f"JSON bodies are limited to {MAX_JSON_BODY_BYTES} bytes."
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; absurd nesting
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Problem(400, "malformed-json", "Malformed JSON", f"The body is not valid JSON{where}.") from None
    where_nul = _nul_path(data)
    if where_nul is not None:
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            f"Check: {where_nul}.",
            errors=[{"name": where_nul, "in": "body", "reason": "contains a NUL character"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc, "body")
        names = ", ".join(e["name"] for e in errors)
        raise Problem(422, "invalid-body", "Invalid request body", f"Check: {names}.", errors=errors) from None


def _nul_path(value: Any, path: str = "") -> str | None:
    """Dotted path of the first string (or key) holding a NUL character, which PostgreSQL text refuses."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return where.replace("\x00", "")
            found = _nul_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity are Python extensions, not JSON


# --- output ---------------------------------------------------------------------------


def _to_json(value: Any) -> bytes:
    if isinstance(value, BaseModel):
        return value.model_dump_json(by_alias=True).encode()
    return pydantic_core.to_json(value, by_alias=True)


def _http_response(
    body: bytes, status: int, content_type: str, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    response = func.HttpResponse(
        body, status_code=status, headers=dict(headers or {}), mimetype=content_type.split(";")[0]
    )
    response.headers["Content-Type"] = content_type
    return response


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

_REF = "#/components/schemas/{model}"
_ERROR_RESPONSES = {
    "400": ("BadRequest", "Invalid query parameters or malformed JSON.", None),
    "401": ("Unauthorized", "Missing or invalid bearer token.", "WWW-Authenticate"),
    "402": ("PaymentRequired", "Nothing left to pay with (e.g. the subscription's allotment is used up).", None),
    "403": ("Forbidden", "The caller lacks the required role.", None),
    "404": ("NotFound", "No such resource, or not the caller's.", None),
    "409": ("Conflict", "The resource's state does not allow this (e.g. already decided).", None),
    "410": ("Gone", "The resource existed but is no longer available.", None),
    "413": ("PayloadTooLarge", "The JSON body is too large.", None),
    "415": ("UnsupportedMediaType", "The body is not application/json.", None),
    "422": ("UnprocessableContent", "The JSON body failed validation.", None),
    "429": ("TooManyRequests", "Rate limit exceeded.", "Retry-After"),
    "500": ("InternalError", "Unexpected server error.", None),
    "502": ("BadGateway", "A provider we depend on refused the request.", None),
    "503": ("ServiceUnavailable", "A dependency is unavailable; retry later.", "Retry-After"),
}
_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "correlation_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "in": {"type": "string", "enum": ["query", "body", "header", "path"]},
                    "reason": {"type": "string"},
                },
                "required": ["name", "in", "reason"],
            },
        },
    },
    "required": ["type", "title", "status", "instance", "correlation_id"],
}


def _error_codes(spec: RouteSpec) -> list[str]:
    codes = ["401", "500", "503"]  # a bad token is refused on every route; any may meet an outage
    if spec.query_model or spec.body_model or spec.required_headers:
        codes.append("400")
    if _ROUTE_PARAM_RE.search(spec.route):
        codes.append("404")  # a path that names no resource (or another caller's)
    codes += [str(code) for code in spec.errors]
    if isinstance(spec.roles, frozenset):
        codes.append("403")
    if spec.body_model:
        codes += ["413", "415", "422"]
    if spec.raw_body:
        codes += ["400", "413", "415"]
    if spec.rate_limited:
        codes.append("429")
    return sorted(set(codes))


def _path_parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    params = []
    for match in _ROUTE_PARAM_RE.finditer(spec.route):
        constraint = (match.group(2) or "").lower()
        schema: dict[str, Any] = {"type": "string"}
        if constraint == "guid":
            schema["format"] = "uuid"
        elif constraint in ("int", "long"):
            schema = {"type": "integer"}
        params.append({"name": match.group(1), "in": "path", "required": True, "schema": schema})
    return params


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or has a value: `X | None` is documented as X (null is not sendable)."""
    options = schema.get("anyOf")
    if not options or not any(option.get("type") == "null" for option in options):
        return schema
    rest = [option for option in options if option.get("type") != "null"]
    outer = {key: value for key, value in schema.items() if key != "anyOf" and not (key == "default" and value is None)}
    return {**outer, **rest[0]} if len(rest) == 1 else {**outer, "anyOf": rest}


def _query_parameters(model_schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(model_schema.get("required", ()))
    params = []
    for name, schema in model_schema.get("properties", {}).items():
        schema = _without_null(schema)
        param = {"name": name, "in": "query", "required": name in required, "schema": schema}
        if "description" in schema:
            param["description"] = schema["description"]
        params.append(param)
    return params


def _x_roles(rule: RoleRule) -> list[str]:
    return [rule.value] if isinstance(rule, Access) else sorted(rule)


def build_openapi(
    routes: Iterable[RouteSpec] = ROUTES,
    *,
    title: str = "Stock marketplace API",
    version: str = "1.0.0",
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (served at /api/openapi.json)."""
    routes = sorted(routes, key=lambda spec: (spec.path, spec.method))
    wanted: dict[tuple[type[BaseModel], str], None] = {}
    for spec in routes:
        for model, mode in ((spec.query_model, "validation"), (spec.body_model, "validation")):
            if model is not None:
                wanted[(model, mode)] = None
        if spec.response_model is not None:
            wanted[(spec.response_model, "serialization")] = None
    refs, defs = models_json_schema(list(wanted), ref_template=_REF) if wanted else ({}, {})  # type: ignore[arg-type]
    schemas: dict[str, Any] = {**defs.get("$defs", {}), "ProblemDetails": _PROBLEM_SCHEMA}

    def schema_of(model: type[BaseModel], mode: str) -> dict[str, Any]:
        ref = refs[(model, mode)]["$ref"]  # type: ignore[index]
        return schemas[ref.rsplit("/", 1)[1]]

    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        parameters = _path_parameters(spec)
        if spec.query_model is not None:
            parameters += _query_parameters(schema_of(spec.query_model, "validation"))
        parameters += [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in spec.required_headers
        ]
        success: dict[str, Any] = {"description": HTTPStatus(spec.status).phrase}
        if spec.response_model is not None:
            success["content"] = {"application/json": {"schema": refs[(spec.response_model, "serialization")]}}
        responses: dict[str, Any] = {str(spec.status): success}
        for code in _error_codes(spec):
            responses[code] = {"$ref": f"#/components/responses/{_ERROR_RESPONSES[code][0]}"}
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "tags": list(spec.tags),
            "parameters": parameters,
            "responses": responses,
            # A token is optional on ANYONE routes (it is validated if sent).
            "security": [{}, {"bearerAuth": []}] if spec.roles is ANYONE else [{"bearerAuth": []}],
            "x-roles": _x_roles(spec.roles),
        }
        if spec.raw_body:
            binary = {"schema": {"type": "string", "format": "binary"}}
            operation["requestBody"] = {"required": True, "content": {media: binary for media in spec.raw_body}}
        if spec.body_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(spec.body_model, "validation")]}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation

    error_responses: dict[str, Any] = {}
    for name, text, header in _ERROR_RESPONSES.values():
        error_responses[name] = {
            "description": text,
            "content": {"application/problem+json": {"schema": {"$ref": _REF.format(model="ProblemDetails")}}},
        }
        if header is not None:
            error_responses[name]["headers"] = {header: {"schema": {"type": "string"}}}
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Entra ID access token (locally: `devhost token --role ...`).",
                }
            },
        },
        "tags": [{"name": tag} for tag in sorted({tag for spec in routes for tag in spec.tags})],
    }
