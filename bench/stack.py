"""The servers, database and worker a bench runs on, built from csm's own helpers.

A bench gets a fresh migrated database (embedded PostgreSQL, or a new database on
DATABASE_URL's server), an SMTP sink, and a Temporal dev server tuned as `csm dev
up` runs it; its workers run in the bench's own process, as in pass_throughput.py.
The global contact policy opens every channel all day, so a bench run in the
evening is not held back by calling hours (checks still run).

Also here: small figure helpers the benches share (percentiles, waiting for a
workflow's plan).
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from csm.compliance.store import set_policy
from csm.database import create_engine
from csm.devstack.temporal import temporal_binary, tuning_args
from csm.settings import Settings
from csm.testing.servers import fresh_database, smtp_sink
from worker import build_worker
from workflows.subcampaign import PlanView, SubCampaignWorkflow

#: Calling hours open all day on every channel: benches measure passes, not the clock.
OPEN_HOURS = '[hours]\nvoice = "any"\nsms = "any"\nemail = "any"\n'
#: Every weekday, so a bench strategy runs on the day it is started, weekend or not.
EVERY_DAY = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'


@dataclass
class BenchStack:
    """One bench run's real parts: a dev server, a database and its settings."""

    env: WorkflowEnvironment
    engine: AsyncEngine
    settings: Settings

    @property
    def client(self) -> Client:
        return self.env.client

    def worker(self, task_queue: str, *, checks: bool = True) -> Worker:
        """csm's worker (every workflow and activity) on `task_queue`, in this process."""
        return build_worker(
            self.client, self.settings, engine=self.engine, task_queue=task_queue, checks=checks
        )


def morning_zone(now: datetime | None = None) -> str:
    """A fixed-offset zone (`Etc/GMT…`) where it is between 02:00 and 03:00 now.

    A bench that needs a pass waiting hours for its `after` delay uses it as the
    campaign's zone: the wait then ends the same campaign day, whatever the hour the
    bench runs (with a zone picked once, say America/Chicago, a 6-hour wait started
    in its evening would run past midnight and the pass be skipped, not wait).
    """
    hour = (now or datetime.now(UTC)).hour
    offset = (2 - hour + 12) % 24 - 12  # UTC+offset is at 02:xx, offset in -12..11
    # POSIX signs: Etc/GMT-9 is UTC+9.
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def with_morning_zone(passes: str) -> str:
    """A strategy's text: `passes` (its tables) in the campaign zone of `morning_zone()`,
    so its day has about 21 hours left whenever the bench runs."""
    return f'timezone = "{morning_zone()}"\n{passes}'


def task_queue(prefix: str = "bench") -> str:
    """A task queue of its own, so no earlier worker takes this run's tasks."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def bench_servers(
    *, pool_size: int = 4
) -> AsyncIterator[tuple[WorkflowEnvironment, AsyncEngine, str]]:
    """A fresh migrated database and a Temporal dev server tuned as `csm dev up` runs it,
    stopped after (also on error). Yields the server's environment, an engine of
    `pool_size` connections and the database's URL; the bench picks its own SMTP sink,
    workers and contact policy."""
    async with fresh_database(os.environ.get("DATABASE_URL")) as url:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            dev_server_extra_args=tuning_args(),
            data_converter=pydantic_data_converter,
        )
        engine = create_engine(url, pool_size=pool_size)
        try:
            yield env, engine, url
        finally:
            await engine.dispose()
            await env.shutdown()


@asynccontextmanager
async def bench_stack(*, pool_size: int = 4) -> AsyncIterator[BenchStack]:
    """Start the servers, yield the stack, stop everything (also on error)."""
    async with bench_servers(pool_size=pool_size) as (env, engine, url), smtp_sink() as (port, _):
        settings = Settings(database_url=url, smtp_host="127.0.0.1", smtp_port=port, _env_file=None)
        await set_policy(engine, OPEN_HOURS, author="bench: open hours")
        yield BenchStack(env=env, engine=engine, settings=settings)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in (0, 1]) of `values`."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


async def wait_for_plan(
    handle: WorkflowHandle, ready: Callable[[PlanView], bool], *, within: float = 120.0
) -> PlanView:
    """Query the sub-campaign's plan until `ready(plan)` (for at most `within` seconds);
    the plan it was ready in."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        plan = await handle.query(SubCampaignWorkflow.plan_query)
        if ready(plan):
            return plan
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the plan did not get ready in {within:.0f}s: {plan}")
        await asyncio.sleep(0.05)
