"""Who is calling and how often: bearer authentication, role checks, the client's address, rate limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

import azure.functions as func
import structlog

from shared.auth import (
    InvalidToken,
    Principal,
)
from shared.http.context import _limiter, _settings, _validator
from shared.http.problems import Problem, _invalid_token, _unauthenticated, _www_authenticate
from shared.http.routing import RouteSpec

log = structlog.get_logger(__name__)

# Set by devhost to the socket peer's address, and by Azure's front end; only
# read when X-Forwarded-For is absent.
CLIENT_IP_HEADER: Final = "x-client-ip"
RATE_PERIOD_SECONDS: Final = 60.0


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
    await _hit(key, limit)


async def _anonymous_route_limit(spec: RouteSpec, principal: Principal | None, ip: str) -> None:
    """A route's own per-IP budget for anonymous callers (e.g. search), on top of the general one.

    Routes naming the same setting share one budget, so spreading calls over them gains nothing.
    """
    if principal is not None or spec.anonymous_limit is None:
        return
    await _hit(f"anon:{spec.anonymous_limit}:{_ip_rate_key(ip)}", getattr(_settings(), spec.anonymous_limit))


async def _hit(key: str, limit: int) -> None:
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
