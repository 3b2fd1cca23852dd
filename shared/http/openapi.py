"""The OpenAPI 3.1 document, built from the declared routes."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import structlog
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.http.routing import _ROUTE_PARAM_RE, ANYONE, ROUTES, Access, RoleRule, RouteSpec

log = structlog.get_logger(__name__)

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
        for code in spec.also_status:
            responses[str(code)] = {**success, "description": HTTPStatus(code).phrase}
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
