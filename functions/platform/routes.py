"""Platform HTTP routes: health, the caller's identity, the OpenAPI document, the bus probe."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from functions.platform.blueprint import bp
from functions.platform.handlers import check_health, send_bus_ping
from shared.http import ANYONE, SIGNED_IN, ApiRequest, ApiResponse, Problem, api, build_openapi, cors_preflight
from shared.runtime import get_runtime

# Browsers on allow-listed origins (CORS_ALLOWED_ORIGINS) ask here before calling any /api route.
cors_preflight(bp)


class MeOut(BaseModel):
    id: str
    roles: list[str]
    name: str | None = None
    email: str | None = None


class BusPingOut(BaseModel):
    nonce: str
    message_id: str
    correlation_id: str | None
    delivery_count: int
    round_trip_ms: float


@api(
    bp,
    "GET",
    "health",
    roles=ANYONE,
    summary="Liveness and the state of database, blob storage and bus",
    tags=["platform"],
    rate_limited=False,
)
async def health(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    report = await check_health(runtime.db, runtime.storage, runtime.settings.BUS_TRANSPORT)
    return ApiResponse(200 if report["status"] == "ok" else 503, body=report)


@api(bp, "GET", "me", roles=SIGNED_IN, summary="The caller's id and roles", response_model=MeOut, tags=["platform"])
async def me(request: ApiRequest) -> MeOut:
    principal = request.principal
    return MeOut(id=principal.sub, roles=sorted(principal.roles), name=principal.name, email=principal.email)


@api(bp, "GET", "openapi.json", roles=ANYONE, summary="This API's OpenAPI 3.1 document", tags=["platform"])
async def openapi(request: ApiRequest) -> dict[str, Any]:
    return build_openapi(title="Stock marketplace API", version="1")


@api(
    bp,
    "POST",
    "admin/bus/ping",
    roles={"admin"},
    summary="Send a ping through outbox, relay, bus and a trigger",
    response_model=BusPingOut,
    tags=["platform"],
)
async def bus_ping(request: ApiRequest) -> BusPingOut:
    runtime = await get_runtime()
    try:
        return BusPingOut(**await send_bus_ping(runtime.db, request.correlation_id))
    except TimeoutError as exc:
        raise Problem(504, "bus-timeout", "The bus did not deliver the ping in time", detail=str(exc)) from None
