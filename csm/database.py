"""Engines, sessions and migrations for the csm database.

Only activities and the CLI import this module; workflow code never does
(asyncpg inside the workflow sandbox crashes the worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

# driver_connection lives with the plain reads (which lend it to their callers without
# loading SQLAlchemy); re-exported here, where the engine's users look for it.
from csm.lookups import SERVER_SETTINGS
from csm.lookups import driver_connection as driver_connection
from csm.settings import DEFAULT_DATABASE_POOL_SIZE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_engine(
    url: str, *, connections: int | None = None, pool_size: int | None = None
) -> AsyncEngine:
    """An engine whose connections run with csm's session settings (no JIT: see there).

    `connections` is the most it holds at once (a worker's CSM_DATABASE_POOL_SIZE, default
    DEFAULT_DATABASE_POOL_SIZE): that total is what PostgreSQL's max_connections must make
    room for (docs/sizing.md), so it is the one figure callers give. `pool_size` is the
    older form, kept for its callers: twice that many. All of them stay open once opened:
    a pass borrows a connection for each statement (csm.pooled), and an overflow that
    closes each connection it gives back would reconnect for every statement of a burst.
    """
    if connections is not None and pool_size is not None:
        raise TypeError("give connections (the total) or pool_size, not both")
    if connections is None:
        connections = DEFAULT_DATABASE_POOL_SIZE if pool_size is None else 2 * pool_size
    if connections < 1:
        raise ValueError(f"a pool needs one connection at least, not {connections}")
    engine = create_async_engine(
        url,
        pool_size=connections,
        max_overflow=0,
        connect_args={"server_settings": SERVER_SETTINGS},
    )
    event.listen(engine.sync_engine, "checkout", _still_open)
    return engine


def _still_open(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Replace, at checkout, a pooled connection the server has closed (it restarted).

    Instead of `pool_pre_ping`, whose ping costs three round trips with asyncpg (BEGIN,
    SELECT 1, ROLLBACK) at every checkout: a pass borrows a connection for each statement
    (csm.pooled), and measured with 20 sub-campaigns on one worker the pings were a third
    of the worker's socket writes. asyncpg sees a connection closed by the server as soon
    as the server ends it, with no round trip."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


@asynccontextmanager
async def engine_for(url: str, *, pool_size: int = 5) -> AsyncIterator[AsyncEngine]:
    """An engine for one command or script, disposed at the end."""
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    # Alembic loads here, not at import: every CLI command that reads the database imports
    # this module, and only `csm db upgrade` (and the dev stack) migrates.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; runs its own event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to `revision` ("base" removes every table)."""
    from alembic import command

    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply migrations from async code: Alembic's env runs its own loop in a thread."""
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://")).get_current_head()
    assert head is not None
    return head
