"""One voice pass over N contacts on the zero-latency simulator, end to end.

Prints contacts/s of the pass (selection frozen, every contact attempted and
recorded) twice in the same run: with the contact policy off, then with every
check on (hours, Reg F caps, a per-device cap, a state cap, the conversation
pause, batch leases, list priority, final outcomes, suppressions), the history
events of the run, and the amendment update round trip (p50/p95) on a waiting
sub-campaign. Runs its own servers: an embedded
PostgreSQL (or DATABASE_URL) and a tuned Temporal dev server.

    python bench/pass_throughput.py --contacts 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from csm.amendments import Amendment, SetPacing
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.database import create_engine
from csm.devstack.temporal import temporal_binary, tuning_args
from csm.launch import start_sub_campaign
from csm.settings import Settings
from csm.strategy import Pacing, load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.servers import fresh_database, smtp_sink
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

ONE_PASS = """
timezone = "America/Chicago"
[[passes]]
name = "voice"
channel = "voice"
"""
#: Every check does its work; hours that are open all day so the pass is not skipped.
ALL_CHECKS = """
[hours]
voice = "00:00-23:59:59"
sms = "00:00-23:59:59"
[states.FL]
voice = "00:00-23:59:59"
[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]
[[caps]]
name = "device_24h"
max = 3
period = "24h"
per = "device"
[[caps]]
name = "fl_3_per_24h"
max = 3
period = "24h"
states = ["FL"]
[conversation_pause]
days = 7
"""
WAITING = """
timezone = "America/Chicago"
[[passes]]
name = "first"
channel = "sms"
[[passes]]
name = "later"
channel = "voice"
after = "6h"
"""


async def run(contacts: int, updates: int) -> None:
    async with fresh_database(os.environ.get("DATABASE_URL")) as url, smtp_sink() as (port, _):
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            dev_server_extra_args=tuning_args(),
            data_converter=pydantic_data_converter,
        )
        engine = create_engine(url, pool_size=4)
        settings = Settings(database_url=url, smtp_host="127.0.0.1", smtp_port=port, _env_file=None)
        try:
            queue = f"bench-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            await create_synthetic_list(engine, "bench", contacts=contacts, seed=7)
            print(
                f"list of {contacts:,} contacts created in {time.perf_counter() - started:.1f}s",
                flush=True,
            )
            await create_campaign(engine, "bench", load_strategy(ONE_PASS), ONE_PASS)
            await create_campaign(engine, "waiting", load_strategy(WAITING), WAITING)
            await create_campaign(engine, "bench-off", load_strategy(ONE_PASS), ONE_PASS)
            await set_policy(engine, ALL_CHECKS, campaign="bench")
            await set_policy(engine, '[hours]\nsms = "any"\n', campaign="waiting")
            figures = {}
            for campaign, checks in (("bench-off", False), ("bench", True)):
                async with build_worker(
                    env.client, settings, engine=engine, task_queue=queue, checks=checks
                ):
                    figures[checks] = await one_pass(env, engine, campaign, queue, checks)
            print(
                f"checks on / off: {figures[True] / figures[False]:.2f}",
                flush=True,
            )
            async with build_worker(env.client, settings, engine=engine, task_queue=queue):
                waiting = await start_sub_campaign(
                    env.client,
                    engine,
                    campaign="waiting",
                    list_name="bench",
                    task_queue=queue,
                    name="waiting",
                )
                while True:
                    plan = await waiting.handle.query(SubCampaignWorkflow.plan_query)
                    if plan.passes and plan.passes[1].status.value == "waiting":
                        break
                    await asyncio.sleep(0.1)
                round_trips = []
                for n in range(updates):
                    sent = time.perf_counter()
                    await waiting.handle.execute_update(
                        SubCampaignWorkflow.amend_update,
                        Amendment(
                            operations=[SetPacing(target=2, pacing=Pacing(concurrency=1 + n % 50))]
                        ),
                    )
                    round_trips.append((time.perf_counter() - sent) * 1000)
                round_trips.sort()
                p95 = round_trips[int(len(round_trips) * 0.95) - 1]
                print(
                    f"amendment update round trip over {updates}: "
                    f"p50 {statistics.median(round_trips):.1f} ms, p95 {p95:.1f} ms",
                    flush=True,
                )
                history = await waiting.handle.fetch_history()
                print(f"history after {updates} amendments: {len(history.events)} events")
                await waiting.handle.signal(SubCampaignWorkflow.stop)
                await waiting.handle.result()
        finally:
            await engine.dispose()
            await env.shutdown()


async def one_pass(
    env: WorkflowEnvironment, engine: AsyncEngine, campaign: str, queue: str, checks: bool
) -> float:
    """Run the campaign's one voice pass over the list; print and return its contacts/s."""
    launched = await start_sub_campaign(
        env.client, engine, campaign=campaign, list_name="bench", task_queue=queue
    )
    await launched.handle.result()
    plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
    history = await launched.handle.fetch_history()
    async with engine.connect() as connection:
        span = (
            await connection.execute(
                text(
                    "SELECT extract(epoch FROM max(updated_at) - min(p.created)) FROM "
                    "(SELECT updated_at, (SELECT min(attempted_at) FROM attempts WHERE "
                    "sub_campaign_id = :s) AS created FROM pass_progress WHERE "
                    "sub_campaign_id = :s) p"
                ),
                {"s": launched.sub_campaign.id},
            )
        ).scalar()
    counts = plan.passes[0].counts
    seconds = float(span)
    rate = counts.selected / seconds
    print(
        f"voice pass, checks {'on' if checks else 'off'}: {counts.selected:,} selected, "
        f"{counts.attempted:,} attempted, {sum(counts.results.values()):,} attempt rows, "
        f"skips {dict(counts.skip_reasons)} in {seconds:.2f}s = {rate:,.0f} contacts/s",
        flush=True,
    )
    print(f"history: {len(history.events)} events for the day run with one pass", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.contacts, args.updates))


if __name__ == "__main__":
    main()
