"""Async SQLAlchemy on asyncpg. PostgreSQL is the only dialect."""

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kit.settings import ServiceSettings


def asyncpg_dsn(url: str) -> str:
    """A libpq-style URL for asyncpg itself (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


def with_database(server_url: str, database: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def ensure_database(server_url: str, database: str) -> str:
    """Create `database` on the server if it is missing; returns its URL."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another local service created it first
    finally:
        await conn.close()
    return with_database(server_url, database)


async def resolve_database_url(settings: ServiceSettings, service: str) -> str:
    """The configured URL, or this service's database on the embedded PostgreSQL."""
    if settings.database_url:
        return settings.database_url
    from kit import embedded

    server_url = await asyncio.to_thread(embedded.postgres_server_url, settings.data_dir)
    return await ensure_database(server_url, f"nudge_{service}")


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, json_serializer=_json_text, json_deserializer=orjson.loads)


def _json_text(value) -> str:
    return orjson.dumps(value).decode()


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def rows_about(session: AsyncSession, table: Table, workspace_id: str, keys: list, *order_by,
                     key: str = "profile_id") -> list[dict]:
    """The workspace's rows of `table` whose `key` column is among `keys` (a person's ids), as
    plain dicts of every column but the workspace: what a GDPR export shows of a table, so a
    column added later is exported too."""
    columns = [column for column in table.c if column.name != "workspace_id"]
    names = [str(column.name) for column in columns]  # plain str: SQLAlchemy's quoted names are not JSON keys
    rows = await session.execute(select(*columns).where(table.c.workspace_id == workspace_id,
                                                        table.c[key].in_(keys)).order_by(*order_by))
    return [dict(zip(names, row, strict=True)) for row in rows]
