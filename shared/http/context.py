"""The edge's process-wide collaborators (settings, token validator, rate limiter), built lazily."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import structlog

from shared.auth import (
    InMemoryRateLimiter,
    Principal,
    RateLimiter,
    validator_from_settings,
)
from shared.config import Settings, get_settings
from shared.telemetry import configure_telemetry

log = structlog.get_logger(__name__)

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
