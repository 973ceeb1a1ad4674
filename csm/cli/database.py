"""Running a command's work on the database: an engine, or one plain connection, in its own
event loop; a database it cannot reach, or loses, is one line (CsmError), not a traceback.

Every command module that reads or writes the database runs its work through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from csm.errors import CsmError

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def with_database(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` with an engine on the configured database; unreachable → one-line error."""
    from csm.database import engine_for
    from csm.settings import load_settings

    url = load_settings().effective_database_url

    async def run() -> T:
        async with engine_for(url) as engine:
            return await work(engine)

    return run_on_database(url, run)


def with_connection(work: Callable[[asyncpg.Connection], Awaitable[T]], url: str) -> T:
    """Run `work` on one plain asyncpg connection to `url` (a SQLAlchemy or libpq URL).

    For reads that must start fast (`csm status`): no SQLAlchemy, no pool. The reads take
    it as they take an engine (csm.lookups.Db). Without a pool nothing reconnects, so a
    connection the server drops (a restart during `--watch`) ends the command in one line.
    """
    import asyncpg

    from csm.lookups import connect
    from csm.settings import asyncpg_dsn, mask_url_password

    async def run() -> T:
        connection = await connect(asyncpg_dsn(url))
        try:
            return await work(connection)
        except (
            asyncpg.InterfaceError,
            asyncpg.PostgresConnectionError,
            asyncpg.InternalClientError,  # a query racing the server's goodbye (seen in CI)
        ) as err:
            if not connection.is_closed() and not isinstance(err, asyncpg.InternalClientError):
                raise
            raise CsmError(
                f"lost the connection to the database at {mask_url_password(url)}: {err}"
            ) from None
        finally:
            await connection.close()  # a no-op on a connection already closed

    return run_on_database(url, run)


def run_on_database(url: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main` in its own event loop; a database it cannot reach is a one-line error."""
    import asyncio

    from csm.settings import mask_url_password

    try:
        return asyncio.run(main())
    except OSError as err:  # refused, unknown host: asyncpg raises these unwrapped
        raise CsmError(f"cannot reach the database at {mask_url_password(url)}: {err}") from err
