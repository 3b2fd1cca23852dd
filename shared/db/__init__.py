"""Database port: an asyncpg pool, transactions, migrations, and the embedded server."""

from shared.db.pool import Database, connect_database

__all__ = ["Database", "connect_database"]
