"""The csm worker: every workflow and activity on the task queue from settings.

`python worker.py` or `csm worker` runs it until SIGINT/SIGTERM, which shut it
down gracefully (running activities are cancelled and may finish cleanly).
Tests and scripts call `build_worker` with their own client.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.health import HealthActivities
from csm.database import create_engine
from csm.settings import Settings, load_settings
from csm.smtp import SmtpConfig
from csm.temporal_client import connect
from workflows.health import StackCheckWorkflow

WORKFLOWS = [StackCheckWorkflow]


def build_worker(
    client: Client,
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    task_queue: str | None = None,
) -> Worker:
    """A worker with every csm workflow and activity, bound to real clients from settings."""
    engine = engine or create_engine(settings.effective_database_url)
    health = HealthActivities(engine, SmtpConfig.from_settings(settings))
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[health.check_database, health.check_smtp],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    client = await connect(settings)
    engine = create_engine(settings.effective_database_url)
    worker = build_worker(client, settings, engine=engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info(
        "csm worker on task queue %r at %s", settings.task_queue, settings.temporal_address
    )
    async with worker:
        await stop.wait()
        logging.info("shutting down: cancelling running activities")
    await engine.dispose()


def main() -> None:
    from csm.cli.exit import run_and_exit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_and_exit(lambda: asyncio.run(run_worker(load_settings())))


if __name__ == "__main__":
    main()
