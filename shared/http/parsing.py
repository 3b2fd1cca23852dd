"""Query and body validation: outside input is checked here, before any handler runs."""

from __future__ import annotations

import json
import re
import types
from functools import cache
from typing import Annotated, Any, Final, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import structlog
from pydantic import BaseModel, ValidationError

from shared.http.problems import Problem

log = structlog.get_logger(__name__)

MAX_JSON_BODY_BYTES: Final = 1024 * 1024


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


@cache  # per query model: its fields do not change after the route is declared
def _multi_names(model: type[BaseModel]) -> frozenset[str]:
    """Names (and aliases) of the fields that take repeated parameters."""
    multi: set[str] = set()
    for field_name, info in model.model_fields.items():
        if _is_multi(info.annotation):
            multi |= {field_name, info.alias or field_name}
    return frozenset(multi)


def _parse_query(model: type[BaseModel], req: func.HttpRequest) -> BaseModel:
    multi = _multi_names(model)
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
