"""Running a sub-campaign command's work with a Temporal client and the database.

The client comes from csm.control (an unreachable server is one line); the database is
an engine, or for `csm status` one plain asyncpg connection, which must start fast and
so never loads SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from csm.cli.database import with_connection, with_database

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client

    from csm.settings import Settings

T = TypeVar("T")


def with_temporal(work: Callable[[Client, AsyncEngine, Settings], Awaitable[T]]) -> T:
    """Run `work` with a Temporal client and a database engine from the settings."""
    from csm.control import connect
    from csm.settings import load_settings

    settings = load_settings()

    async def run(engine: AsyncEngine) -> T:
        client = await connect(settings)
        return await work(client, engine, settings)

    return with_database(run)


def with_temporal_reads(work: Callable[[Client, asyncpg.Connection, Settings], Awaitable[T]]) -> T:
    """Like `with_temporal`, on one plain asyncpg connection: for `csm status`, which only
    reads (csm.lookups) and must start fast, so it never loads SQLAlchemy. csm.control is
    imported once the database answered: a status that cannot reach it fails as fast as
    before csm.control existed."""
    from csm.settings import load_settings

    settings = load_settings()

    async def run(connection: asyncpg.Connection) -> T:
        from csm.control import connect

        client = await connect(settings)
        return await work(client, connection, settings)

    return with_connection(run, settings.effective_database_url)
