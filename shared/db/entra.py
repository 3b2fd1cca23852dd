"""Postgres sign-in with a Microsoft Entra token instead of a password (Azure Database for PostgreSQL).

With DATABASE_AUTH=entra the DSN names the managed identity as the user and carries no password;
asyncpg calls `EntraTokenPassword` for every new connection and sends the access token as the password.
The credential caches the token and renews it shortly before it expires (tokens live about an hour),
so a long-lived pool keeps opening connections without an admin password ever reaching app settings.
"""

from __future__ import annotations

from typing import Protocol

from shared.config import Settings

# The audience Azure Database for PostgreSQL accepts tokens for.
POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


class AsyncTokenCredential(Protocol):
    async def get_token(self, *scopes: str, **kwargs: object): ...  # -> azure.core.credentials.AccessToken

    async def close(self) -> None: ...


class EntraTokenPassword:
    """An asyncpg `password` callable returning a current Entra access token for Postgres."""

    def __init__(self, credential: AsyncTokenCredential) -> None:
        self._credential = credential

    async def __call__(self) -> str:
        return (await self._credential.get_token(POSTGRES_SCOPE)).token

    async def close(self) -> None:
        await self._credential.close()


def database_password(settings: Settings, credential: AsyncTokenCredential | None = None) -> EntraTokenPassword | None:
    """What asyncpg should use as the password: a token source under DATABASE_AUTH=entra, else the DSN's own."""
    if settings.DATABASE_AUTH != "entra":
        return None
    if credential is None:
        from azure.identity.aio import DefaultAzureCredential  # picks the user-assigned identity by AZURE_CLIENT_ID

        credential = DefaultAzureCredential()
    return EntraTokenPassword(credential)
