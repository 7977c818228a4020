"""Alembic, one history per service: `upgrade()` from code, `run_env()` from each env.py."""

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from kit.db import sqlalchemy_url

# Replicas starting together take turns; the loser finds the schema already current.
_MIGRATION_LOCK = 0x6E75646765  # "nudge"


def _config(url: str, migrations_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


async def upgrade(url: str, migrations_dir: Path, revision: str = "head") -> None:
    # Alembic is synchronous and its env runs its own event loop, so it gets a thread.
    await asyncio.to_thread(command.upgrade, _config(url, migrations_dir), revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    if context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                          target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(target_metadata))


async def _run_online(target_metadata: MetaData) -> None:
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            await connection.commit()
            try:
                await connection.run_sync(_migrate, target_metadata)
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
                await connection.commit()
    finally:
        await engine.dispose()


def _migrate(connection, target_metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
