"""A pass waiting its turn for a pooled connection heartbeats (csm.lookups.driver_connection):
with many passes on one worker's pool, a wait longer than the heartbeat timeout must not
get the pass cancelled as dead, and the pool's own wait timing out must not fail it."""

from __future__ import annotations

import asyncio

from temporalio.testing import ActivityEnvironment

from csm.database import create_engine
from csm.lookups import driver_connection


async def test_a_wait_for_the_pool_heartbeats_and_outlasts_the_pools_timeout(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1)
    engine.sync_engine.pool._max_overflow = 0  # one connection, nothing beyond it
    engine.sync_engine.pool._timeout = 1.0  # the pool gives up on a waiter after 1 s
    beats: list[tuple] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    try:
        async with driver_connection(engine):  # the only connection, held by someone else

            async def waiting_pass() -> int:
                async with driver_connection(engine) as connection:
                    return await connection.fetchval("SELECT 1")

            waiter = asyncio.ensure_future(env.run(waiting_pass))
            while len(beats) < 3:  # the pool's 1 s wait ran out at least once meanwhile
                assert not waiter.done(), waiter
                await asyncio.sleep(0.1)
        assert await waiter == 1
    finally:
        await engine.dispose()
