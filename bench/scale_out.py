"""Scale-out: the same voice pass unsharded on 1 worker process, then split into 2 shards
on 2 worker processes (`pacing.shards = 2`, issue 8).

Both runs go through real `python worker.py` processes (one activity at a time each,
`CSM_MAX_CONCURRENT_ACTIVITIES=1`, so each shard gets a process), a tuned Temporal dev
server and an embedded PostgreSQL (or DATABASE_URL), over the same list, with the
contact policy on (hours open all day, no caps). The simulator answers at once unless
`--latency-ms` is given. Prints contacts/s of each run (from the pass's first attempt to
its last), the wall time from start to result, each worker process's CPU seconds, and
the speed-up. `--rounds` alternates the two runs that many times.

    python bench/scale_out.py --contacts 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.stack import bench_servers
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.exit import run_and_exit
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.workers import environment, worker_processes

PASS = """
timezone = "America/Chicago"
[[passes]]
name = "voice"
channel = "voice"
pacing = {{ shards = {shards}, concurrency = {concurrency} }}
"""
OPEN_ALL_DAY = '[hours]\nvoice = "any"\n'
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    what: str
    selected: int
    rows: int
    seconds: float  # first attempt to last
    wall: float  # start of the workflow to its result
    cpu: list[float]  # CPU seconds of each worker process

    @property
    def rate(self) -> float:
        return self.selected / self.seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def one_run(
    client: Client,
    engine: AsyncEngine,
    url: str,
    *,
    campaign: str,
    shards: int,
    latency_ms: float,
) -> Run:
    """The campaign's one pass over the list `bench`, on `shards` fresh worker processes."""
    queue = f"scale-{uuid.uuid4().hex[:6]}"
    settings = Settings(database_url=url, temporal_address=client.service_client.config.target_host)
    env = environment(
        settings,
        task_queue=queue,
        simulator_latency_ms=latency_ms,
        max_concurrent_activities=1,  # so each shard gets a process
    )
    async with worker_processes(env, shards, client=client) as processes:
        cpu_before = [_cpu_seconds(p.pid) for p in processes]
        started = time.perf_counter()
        launched = await start_sub_campaign(
            client,
            engine,
            campaign=campaign,
            list_name="bench",
            task_queue=queue,
            name=f"{campaign}-{uuid.uuid4().hex[:6]}",
        )
        summary = await launched.handle.result()
        wall = time.perf_counter() - started
        pairs = zip(processes, cpu_before, strict=True)
        cpu = [_cpu_seconds(p.pid) - before for p, before in pairs]
    assert summary.state == "completed", summary
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT count(DISTINCT contact_id) AS contacts, count(*) AS rows,"
                    " extract(epoch FROM max(attempted_at) - min(attempted_at)) AS seconds"
                    " FROM attempts WHERE sub_campaign_id = :s"
                ),
                {"s": launched.sub_campaign.id},
            )
        ).one()
        selected = await connection.scalar(
            text("SELECT selected FROM pass_progress WHERE sub_campaign_id = :s AND round = 0"),
            {"s": launched.sub_campaign.id},
        )
    assert row.contacts == selected, (row.contacts, selected)  # every contact, once
    what = (
        "unsharded, 1 worker process"
        if shards == 1
        else f"shards = {shards}, {shards} worker processes"
    )
    run = Run(what, selected, row.rows, max(float(row.seconds), 1e-3), wall, cpu)
    print(
        f"{run.what}: {run.selected:,} contacts, {run.rows:,} attempt rows in "
        f"{run.seconds:.2f}s = {run.rate:,.0f} contacts/s (start to result {run.wall:.2f}s; "
        f"worker CPU {' + '.join(f'{c:.1f}' for c in run.cpu)} s)",
        flush=True,
    )
    return run


async def run(contacts: int, latency_ms: float, concurrency: int, rounds: int) -> None:
    async with bench_servers(pool_size=2) as (env, engine, url):
        began = time.perf_counter()
        await create_synthetic_list(engine, "bench", contacts=contacts, seed=7)
        print(
            f"list of {contacts:,} contacts created in {time.perf_counter() - began:.1f}s; "
            f"simulator latency {latency_ms:g} ms, pass concurrency {concurrency}; "
            f"{os.cpu_count()} cores",
            flush=True,
        )
        for name, shards in (("one", 1), ("two", 2)):
            strategy = PASS.format(shards=shards, concurrency=concurrency)
            await create_campaign(engine, name, load_strategy(strategy), strategy)
            await set_policy(engine, OPEN_ALL_DAY, campaign=name)
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for _ in range(rounds):
            for name, shards in (("one", 1), ("two", 2)):
                runs[shards].append(
                    await one_run(
                        env.client,
                        engine,
                        url,
                        campaign=name,
                        shards=shards,
                        latency_ms=latency_ms,
                    )
                )
        one = max(r.rate for r in runs[1])
        two = max(r.rate for r in runs[2])
        walls = min(r.wall for r in runs[1]) / min(r.wall for r in runs[2])
        print(
            f"speed-up with 2 shards on 2 worker processes: {two / one:.2f}x "
            f"({one:,.0f} -> {two:,.0f} contacts/s, best of {rounds}; "
            f"start to result {walls:.2f}x)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.contacts < 1 or args.rounds < 1 or args.concurrency < 2:
        parser.error("--contacts and --rounds must be at least 1, --concurrency at least 2")
    run_and_exit(
        lambda: asyncio.run(run(args.contacts, args.latency_ms, args.concurrency, args.rounds))
    )


if __name__ == "__main__":
    main()
