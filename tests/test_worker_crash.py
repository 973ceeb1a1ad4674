"""SIGKILL a real worker process in the middle of a pass, start a new one: no attempt is
repeated, none is lost, and what was in flight is recorded as unknown."""

from __future__ import annotations

import asyncio
import random
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.control import start_sub_campaign
from csm.settings import Settings
from csm.testing.workers import WorkerProcess, environment, worker_processes
from tests.helpers import campaign_with_list
from tests.test_subcampaign_control import assert_exact

STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "long voice pass"
channel = "voice"
pacing = { concurrency = 10 }
"""


async def _rows(engine: AsyncEngine, sub_id: int) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(
            text("SELECT count(*) FROM attempts WHERE sub_campaign_id = :s"), {"s": sub_id}
        )


async def test_sigkill_mid_pass_neither_repeats_nor_loses(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=1500)
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = environment(settings, task_queue=queue, simulator_latency_ms=15)
    async with worker_processes(env) as workers:
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        sub_id = launched.sub_campaign.id
        async with asyncio.timeout(60):
            while True:
                if await _rows(engine, sub_id) >= 300:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(random.uniform(0.05, 0.6))  # at a random moment of a batch
        await workers[0].kill()
        before_restart = await _rows(engine, sub_id)
        workers.append(await WorkerProcess.start(env))
        summary = await asyncio.wait_for(launched.handle.result(), 120)
    assert summary.state == "completed"
    assert 300 <= before_restart < 1500 * 3
    await assert_exact(engine, sub_id)
    async with engine.connect() as connection:
        unknown = await connection.scalar(
            text("SELECT count(*) FROM attempts WHERE sub_campaign_id = :s AND result = 'unknown'"),
            {"s": sub_id},
        )
        contacts = await connection.scalar(
            text("SELECT count(DISTINCT contact_id) FROM attempts WHERE sub_campaign_id = :s"),
            {"s": sub_id},
        )
    assert contacts == 1500
    assert unknown <= 2000  # at most the one batch that was in flight
    print(f"rows before restart {before_restart}, unknown after the crash {unknown}")
