"""What a route is: who may call it, what it reads, what the handler gets; and the registry of routes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import azure.functions as func
import structlog
from pydantic import AwareDatetime, BaseModel, BeforeValidator

from shared.auth import (
    KNOWN_ROLES,
    Principal,
)
from shared.http.problems import _unauthenticated

log = structlog.get_logger(__name__)

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
    # Other success statuses with the same body (e.g. 200 "already exists" beside 201 "created").
    also_status: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    rate_limited: bool = True
    # Name of the int setting giving anonymous callers' requests per IP per minute on this route.
    anonymous_limit: str | None = None
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
