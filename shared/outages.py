"""Which errors mean "a dependency is down for now" (the caller should retry) rather than "a bug"."""

from __future__ import annotations

import asyncpg
from azure.core.exceptions import ServiceRequestError

# Connection refused or reset, a socket that vanished with a restarting server, a server shutting
# down or starting up, no connection slot free: each passes by itself.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    ServiceRequestError,  # blob storage did not answer
)


def is_dependency_outage(exc: BaseException) -> bool:
    """True if `exc`, or an error it was raised from, says a database or storage is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _OUTAGES):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
