"""SIGKILL a real worker process in the middle of a pass, start a new one: no attempt is
repeated, none is lost, and what was in flight is recorded as unknown."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.control import start_sub_campaign
from csm.settings import Settings
from tests.helpers import campaign_with_list
from tests.test_subcampaign_control import assert_exact

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "long voice pass"
channel = "voice"
pacing = { concurrency = 10 }
"""


async def _worker(settings: Settings, task_queue: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "DATABASE_URL": settings.effective_database_url,
        "CSM_TEMPORAL_ADDRESS": settings.temporal_address,
        "CSM_TASK_QUEUE": task_queue,
        "CSM_SIMULATOR_LATENCY_MS": "15",
        "CSM_SMTP_HOST": settings.smtp_host,
        "CSM_SMTP_PORT": str(settings.smtp_port),
        "CSM_METRICS_ADDRESS": "",  # no fixed port: tests/test_metrics.py serves metrics
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


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
    first = await _worker(settings, queue)
    try:
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
        first.send_signal(signal.SIGKILL)
        await first.wait()
        before_restart = await _rows(engine, sub_id)
        second = await _worker(settings, queue)
        try:
            summary = await asyncio.wait_for(launched.handle.result(), 120)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
    finally:
        if first.returncode is None:
            first.kill()
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
