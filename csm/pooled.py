"""A connection lent statement by statement, for work that waits between its statements.

A pass runs for minutes and spends most of them waiting: for its pace, for calling
hours, for a carrier's outcomes, for accounts another pass leases. Were it to hold
pooled connections meanwhile, a worker's pool would be gone to a few passes and the
others would wait for it without end (issue 16: 20 connections, 3 a pass). So a pass
reaches PostgreSQL through a `Pooled`: each statement borrows a connection from the
engine's pool and gives it back at once; a transaction keeps one for its block only.

Nothing that borrows holds another connection meanwhile (a statement inside a
transaction runs on the transaction's own connection), so passes waiting their turn
cannot deadlock one another. Inside an activity the wait for a connection heartbeats,
so a pass waiting its turn is not taken for dead and cancelled by its heartbeat timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio import activity

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: How often a wait for a pooled connection heartbeats (the heartbeat timeout is 10 s).
HEARTBEAT_SECONDS = 1.0


class Pooled:
    """An engine's pool, used like one asyncpg connection (the methods the passes call)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # The connection of the transaction this task is in, if any: its statements go there.
        self._in_transaction: ContextVar[asyncpg.Connection | None] = ContextVar(
            f"csm_pooled_{id(self)}", default=None
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The transaction's connection, or one borrowed for a single statement."""
        if (held := self._in_transaction.get()) is not None:
            yield held
            return
        async with borrowed(self.engine) as connection:
            yield connection

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self._connection() as connection:
            return await connection.fetch(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self._connection() as connection:
            return await connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self._connection() as connection:
            return await connection.execute(query, *args)

    async def copy_records_to_table(
        self, table: str, *, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> str:
        async with self._connection() as connection:
            return await connection.copy_records_to_table(table, records=records, columns=columns)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One connection for the block, in a transaction (a savepoint when nested)."""
        if (held := self._in_transaction.get()) is not None:
            async with held.transaction():
                yield
            return
        async with borrowed(self.engine) as connection, connection.transaction():
            token = self._in_transaction.set(connection)
            try:
                yield
            finally:
                self._in_transaction.reset(token)


#: What the passes' SQL takes: one connection of the caller's, or the pool lending one.
Connection: TypeAlias = "asyncpg.Connection | Pooled"


@asynccontextmanager
async def borrowed(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection (as asyncpg itself), waited for with heartbeats in an activity."""
    connection = engine.connect()
    await _checked_out(connection)
    try:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection  # type: ignore[misc]
    finally:
        await connection.close()


async def _checked_out(connection: AsyncConnection) -> None:
    """Check the connection out of the pool. In an activity, heartbeat while the pool makes
    us wait, and wait again when the pool's own wait times out: our turn comes, as every
    borrower gives its connection back after a statement or a transaction."""
    if not activity.in_activity():
        await connection.start()
        return
    while True:
        waiting = asyncio.ensure_future(connection.start())
        try:
            while not waiting.done():
                await asyncio.wait({waiting}, timeout=HEARTBEAT_SECONDS)
                if not waiting.done():
                    activity.heartbeat()
            waiting.result()
            return
        except PoolTimeout:
            activity.heartbeat()
        finally:
            if not waiting.done():
                waiting.cancel()
