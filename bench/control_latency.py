"""How fast a manager's controls take effect on a running sub-campaign.

1. Amendment round trip: `amend` updates (SetPacing on a pass that is waiting
   for its `after` delay), p50/p95 over N, each alternated with an update of a
   no-op workflow on the same server and worker process (bench/baseline_workflows.py):
   that is the ceiling, and the ratio says what csm's validation, plan rebuild
   and search attributes cost on top.
2. Pause → last attempt: a voice pass paced at a steady rate (contact policy on)
   is paused with the `lifecycle` update the CLI sends, repeatedly (pause, wait
   until the pass has recorded its batch and stopped, resume, let it run). From
   the pause call, it measures when the update returned, when the last attempt
   row was made (`attempted_at`) and when the plan showed the pass paused;
   p50/p95/max. The pass hears a pause on its next heartbeat (sent at most once
   a second), so the second figure is expected under a second plus a batch's tail.

    python bench/control_latency.py --updates 200 --repeats 20 --contacts 4000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from temporalio.worker import Worker

from bench.baseline_workflows import NoOpUpdates
from bench.stack import (
    EVERY_DAY,
    BenchStack,
    bench_stack,
    percentile,
    task_queue,
    wait_for_plan,
    with_morning_zone,
)
from csm.amendments import Amendment, SetPacing
from csm.campaigns import create_campaign
from csm.control import start_sub_campaign
from csm.exit import run_and_exit
from csm.plan import PassStatus
from csm.strategy import Pacing, load_strategy
from csm.synthetic import create_synthetic_list
from workflows.subcampaign import PlanView, SubCampaignWorkflow

LIST = "control"
#: The second pass waits six hours after the first: amendments find it not started
#: (the campaign's zone is one where it is early morning, so the wait ends today).
WAITING = f"""
[[passes]]
name = "first"
channel = "sms"
allowed_days = {EVERY_DAY}
[[passes]]
name = "later"
channel = "voice"
after = "6h"
allowed_days = {EVERY_DAY}
"""


def paced(per_minute: int) -> str:
    return f"""
[[passes]]
name = "paced call"
channel = "voice"
allowed_days = {EVERY_DAY}
pacing = {{ per_minute = {per_minute}, concurrency = 10 }}
"""


def spread(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{label} over {len(values)}: p50 {statistics.median(values):.1f} {unit}, "
        f"p95 {percentile(values, 0.95):.1f} {unit}, max {max(values):.1f} {unit}"
    )


async def amendments(stack: BenchStack, queue: str, updates: int) -> float:
    """Amendment round trips alternated with no-op updates; the no-op p50 (ms)."""
    waiting = await start_sub_campaign(
        stack.client, stack.engine, campaign="waiting", list_name=LIST, task_queue=queue
    )
    await wait_for_plan(
        waiting.handle, lambda p: len(p.passes) == 2 and p.passes[1].status is PassStatus.WAITING
    )
    noop = await stack.client.start_workflow(
        NoOpUpdates.run, id=f"noop-{queue}", task_queue=f"{queue}-noop"
    )

    async def amend(number: int) -> float:
        sent = time.perf_counter()
        await waiting.handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(operations=[SetPacing(target=2, pacing=Pacing(concurrency=1 + number % 50))]),
        )
        return (time.perf_counter() - sent) * 1000

    async def touch(number: int) -> float:
        sent = time.perf_counter()
        await noop.execute_update(NoOpUpdates.touch, number)
        return (time.perf_counter() - sent) * 1000

    for number in range(3):  # warm both paths up: caches, connections
        await amend(number)
        await touch(number)
    before = (
        len((await waiting.handle.fetch_history()).events),
        len((await noop.fetch_history()).events),
    )
    csm_trips, noop_trips = [], []
    for number in range(updates):
        csm_trips.append(await amend(number))
        noop_trips.append(await touch(number))
    after = (
        len((await waiting.handle.fetch_history()).events),
        len((await noop.fetch_history()).events),
    )
    print(
        spread("amendment update round trip (SetPacing on a waiting pass)", csm_trips), flush=True
    )
    print(spread("no-op workflow update round trip, same server", noop_trips), flush=True)
    p50_ratio = statistics.median(csm_trips) / statistics.median(noop_trips)
    p95_ratio = percentile(csm_trips, 0.95) / percentile(noop_trips, 0.95)
    print(
        f"amendment / no-op update: p50 {p50_ratio:.2f}x, p95 {p95_ratio:.2f}x; history events "
        f"per update: amendment {(after[0] - before[0]) / updates:.1f}, "
        f"no-op {(after[1] - before[1]) / updates:.1f}",
        flush=True,
    )
    await waiting.handle.execute_update(SubCampaignWorkflow.lifecycle, "stop")
    await waiting.handle.result()
    await noop.signal(NoOpUpdates.finish)
    await noop.result()
    return statistics.median(noop_trips)


async def last_attempt(stack: BenchStack, sub_campaign_id: int) -> datetime | None:
    async with stack.engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT max(attempted_at) FROM attempts"
                    " WHERE sub_campaign_id = :s AND result <> 'skipped'"
                ),
                {"s": sub_campaign_id},
            )
        ).scalar()


async def pauses(stack: BenchStack, queue: str, repeats: int, settle: float) -> list[float]:
    """Pause, measure, resume, `repeats` times; the pause update round trips (ms)."""
    launched = await start_sub_campaign(
        stack.client, stack.engine, campaign="paced", list_name=LIST, task_queue=queue
    )
    handle = launched.handle

    def running(plan: PlanView) -> bool:
        return plan.passes[0].status in (PassStatus.RUNNING, PassStatus.DONE)

    returned, to_last, to_paused = [], [], []
    phases = random.Random(8)  # seeded: the same spread of pause moments every run
    await wait_for_plan(handle, lambda p: bool(p.passes) and running(p))
    for _ in range(repeats):
        # The pass works at its pace again; a varied wait lands the pause at varied moments
        # of its heartbeat cycle (a fixed one would measure the same moment every time).
        await asyncio.sleep(settle * phases.uniform(0.5, 1.5))
        plan = await handle.query(SubCampaignWorkflow.plan_query)
        if plan.passes[0].status is PassStatus.DONE:
            break
        called_at = datetime.now(UTC)
        sent = time.perf_counter()
        await handle.execute_update(SubCampaignWorkflow.lifecycle, "pause")
        returned.append((time.perf_counter() - sent) * 1000)
        plan = await wait_for_plan(
            handle, lambda p: p.passes[0].status in (PassStatus.PAUSED, PassStatus.DONE)
        )
        to_paused.append((time.perf_counter() - sent) * 1000)
        last = await last_attempt(stack, launched.sub_campaign.id)
        if plan.passes[0].status is PassStatus.DONE or last is None:
            break
        to_last.append((last - called_at).total_seconds() * 1000)
        await handle.execute_update(SubCampaignWorkflow.lifecycle, "resume")
        await wait_for_plan(handle, running)
    plan = await handle.query(SubCampaignWorkflow.plan_query)
    if plan.state != "completed":
        await handle.execute_update(SubCampaignWorkflow.lifecycle, "stop")
    await handle.result()
    if len(to_last) < repeats:
        print(f"the pass ended after {len(to_last)} of {repeats} pauses: use more --contacts")
    if not to_last:
        raise SystemExit("no pause was measured")
    print(spread("pause → lifecycle update returned", returned), flush=True)
    print(spread("pause → last attempt (attempted_at)", to_last), flush=True)
    print(spread("pause → pass shown paused (batch recorded; polled every 50 ms)", to_paused))
    return returned


async def run(contacts: int, updates: int, repeats: int, per_minute: int, settle: float) -> None:
    for name, value in (("--contacts", contacts), ("--updates", updates), ("--repeats", repeats)):
        if value < 1:
            raise SystemExit(f"{name} must be at least 1")
    if per_minute < 1 or settle < 0:
        raise SystemExit("--per-minute must be at least 1 and --settle not negative")
    async with bench_stack() as stack:
        await create_synthetic_list(stack.engine, LIST, contacts=contacts, seed=5)
        waiting = with_morning_zone(WAITING)
        await create_campaign(stack.engine, "waiting", load_strategy(waiting), waiting)
        strategy = with_morning_zone(paced(per_minute))
        await create_campaign(stack.engine, "paced", load_strategy(strategy), strategy)
        queue = task_queue("control")
        async with (
            stack.worker(queue),
            Worker(stack.client, task_queue=f"{queue}-noop", workflows=[NoOpUpdates]),
        ):
            noop_p50 = await amendments(stack, queue, updates)
            print(
                f"pass paced at {per_minute:,} attempts/min (10 lanes) over {contacts:,} "
                f"contacts; {repeats} pauses, {settle:g}s (±50 %) of work between them",
                flush=True,
            )
            returned = await pauses(stack, queue, repeats, settle)
        print(
            f"pause update / no-op update: p50 {statistics.median(returned) / noop_p50:.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=200, help="amendment updates timed")
    parser.add_argument("--repeats", type=int, default=20, help="pauses timed")
    parser.add_argument("--contacts", type=int, default=4000, help="the paced pass's list")
    parser.add_argument("--per-minute", type=int, default=3000, help="the paced pass's pace")
    parser.add_argument("--settle", type=float, default=1.5, help="mean seconds between pauses")
    args = parser.parse_args()
    run_and_exit(
        lambda: asyncio.run(
            run(args.contacts, args.updates, args.repeats, args.per_minute, args.settle)
        )
    )


if __name__ == "__main__":
    main()
