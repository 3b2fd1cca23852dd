"""Problems (RFC 9457 problem+json) and the plain responses every module of the edge builds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import azure.functions as func
import pydantic_core
import structlog
from pydantic import BaseModel

log = structlog.get_logger(__name__)

PROBLEM_TYPE_BASE: Final = "https://stock-marketplace.example/problems/"
_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


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


REALM: Final = "stock-marketplace"


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
