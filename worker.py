"""The csm worker: every workflow and activity on the task queue from settings.

`python worker.py` or `csm worker` runs it until SIGINT/SIGTERM, which shut it
down gracefully (running activities are cancelled and may finish cleanly).
It serves Prometheus metrics (the SDK's and csm's, `csm.metrics`) on
`CSM_METRICS_ADDRESS`. Tests and scripts call `build_worker` with their own
client, whose runtime serves none.
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
from activities.passes import PassActivities
from activities.planning import PlanningActivities
from csm.agents import AgentDesk, SimulatedAgentDesk
from csm.channels import Channels
from csm.database import create_engine
from csm.metrics import worker_runtime
from csm.providers import build as providers
from csm.settings import Settings, load_settings
from csm.sizing import check_sizing, log_sizing
from csm.smtp import SmtpConfig
from csm.temporal_client import connect
from workflows.health import StackCheckWorkflow
from workflows.subcampaign import SubCampaignWorkflow

WORKFLOWS = [StackCheckWorkflow, SubCampaignWorkflow]


def build_channels(settings: Settings, engine: AsyncEngine | None = None) -> Channels:
    """E-mail over SMTP; voice, dialer and SMS through the simulator or Twilio, as the
    settings say (csm.providers.build). A Twilio provider needs the engine."""
    return providers.build_channels(settings, engine)


def build_worker(
    client: Client,
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    channels: Channels | None = None,
    task_queue: str | None = None,
    checks: bool = True,
    desk: AgentDesk | None = None,
) -> Worker:
    """A worker with every csm workflow and activity, bound to real clients from settings.

    Heartbeats go out at least every second, so a pause reaches a running pass fast.
    `checks=False` turns the contact policy off: only benchmarks measuring its cost do that.
    `desk` is the contact centre's agents: a real ACD link, or the simulated agents.
    """
    engine = engine or create_engine(
        settings.effective_database_url, connections=settings.database_pool_size
    )
    channels = channels or build_channels(settings, engine)
    health = HealthActivities(engine, SmtpConfig.from_settings(settings))
    desk = desk or SimulatedAgentDesk(engine, seed=settings.simulator_seed)
    passes = PassActivities(engine, channels, checks=checks, desk=desk)
    planning = PlanningActivities(engine)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[health.check_database, health.check_smtp, passes.run_pass, planning.plan_day],
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully.

    First it checks that its database pool can get its connections (csm.sizing), and
    refuses to start, saying what to change, when it cannot.
    """
    engine = create_engine(settings.effective_database_url, connections=settings.database_pool_size)
    try:
        sizing = await check_sizing(engine, settings)
    except BaseException:
        await engine.dispose()
        raise
    runtime = worker_runtime(settings.metrics_address)  # binds the address: once per process
    client = await connect(settings, runtime=runtime)
    channels = build_channels(settings, engine)
    worker = build_worker(client, settings, engine=engine, channels=channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info(
        "csm worker on task queue %r at %s; voice and dialer via %s, SMS via %s",
        settings.task_queue,
        settings.temporal_address,
        providers.chosen(settings, settings.voice_provider),
        providers.chosen(settings, settings.sms_provider),
    )
    if runtime is not None:
        logging.info("metrics on http://%s/metrics", settings.metrics_address)
    log_sizing(sizing)
    async with worker:
        await stop.wait()
        logging.info("shutting down: cancelling running activities")
    await channels.close()  # a carrier's pooled connections and outcome board
    await engine.dispose()


def main() -> None:
    from csm.exit import run_and_exit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run_and_exit(lambda: asyncio.run(run_worker(load_settings())))


if __name__ == "__main__":
    main()
