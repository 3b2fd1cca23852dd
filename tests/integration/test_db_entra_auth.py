"""Postgres sign-in by Entra token (DATABASE_AUTH=entra): asyncpg asks the credential for a token for every
new connection of the pool and of the migrator, for Azure Database for PostgreSQL's audience, and the app
builds azure-identity's credential for it. (The embedded server trusts local connections, so that the token
is *accepted* is Azure's side; what is checked here is that every connection is opened with a current one.)"""

from __future__ import annotations

import time

from azure.core.credentials import AccessToken
from azure.identity.aio import DefaultAzureCredential

from shared.config import load_settings
from shared.db import connect_database
from shared.db.entra import POSTGRES_SCOPE, EntraTokenPassword, database_password
from shared.db.migrate import migrate


class TokenIssuer:
    """Stands for azure-identity's async credential: hands out a new token on each call, records the scopes."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True


async def test_each_new_pool_connection_signs_in_with_a_token_for_postgres(database_dsn):
    issuer = TokenIssuer()
    db = await connect_database(database_dsn, min_size=2, max_size=3, password=EntraTokenPassword(issuer))
    try:
        assert await db.ping()
        assert len(issuer.scopes) == 2 and set(issuer.scopes) == {(POSTGRES_SCOPE,)}
        async with db.connection(), db.connection(), db.connection():  # a third connection: a third token
            pass
        assert len(issuer.scopes) == 3
        listener = await db.connect_unpooled()  # the outbox relay's LISTEN connection, outside the pool
        await listener.close()
        assert len(issuer.scopes) == 4
    finally:
        await db.close()


async def test_migrations_sign_in_the_same_way(empty_database_dsn):
    issuer = TokenIssuer()
    applied = await migrate(empty_database_dsn, password=EntraTokenPassword(issuer))
    assert applied and issuer.scopes == [(POSTGRES_SCOPE,)]


async def test_the_app_uses_azure_identity_only_when_told_to(tmp_path):
    local = load_settings(VAR_DIR=tmp_path)
    assert database_password(local) is None  # the DSN's own password
    entra = load_settings(VAR_DIR=tmp_path, DATABASE_AUTH="entra", DATABASE_URL="postgresql://id-app@db:5432/market")
    password = database_password(entra)
    try:
        assert isinstance(password, EntraTokenPassword)
        assert isinstance(password._credential, DefaultAzureCredential)  # managed identity via AZURE_CLIENT_ID
    finally:
        await password.close()
