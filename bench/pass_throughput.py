"""One voice pass over N contacts on the zero-latency simulator, next to its ceiling.

Issue 8, benchmark 1. In one process, on the same database and table:

1. (unless --no-checks-off) the pass with the contact policy off, for what the
   checks cost;
2. the ceiling: a bare async loop that builds attempt rows with the pass's
   columns and values (its contacts, devices, result mix, one timestamp per
   batch) and COPYs them into the `attempts` table in batches of --batch rows,
   one transaction each, then deletes them. No checks, no provider, no cursor,
   no totals: what the ledger can take from one Python process;
3. the headline: the pass with every check on (hours, Reg F 7-in-7, a per-device
   cap, a state cap, the conversation pause, batch leases, list priority, final
   outcomes, suppressions; it sees the first pass's attempts as history).

A pass's time runs from its first attempt to its last record (the selection is
frozen before); its end-to-end time (workflow start to result) is printed too.
Prints contacts/s and ledger rows/s of each pass, the ceiling's rows/s, and the
ratios, plus the history events of the day run. Runs its own servers: an
embedded PostgreSQL (or DATABASE_URL) and a tuned Temporal dev server.

    python bench/pass_throughput.py --contacts 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from bench.stack import bench_servers
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.database import driver_connection
from csm.ledger import ATTEMPT_COLUMNS
from csm.plan import PassCounts
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from csm.testing.servers import smtp_sink
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
#: The ceiling's rows carry this pass number: no pass of the bench uses it.
CEILING_PASS = 999
PROGRESS_SECONDS = 10.0


@dataclass
class PassFigures:
    contacts: int
    rows: int
    seconds: float  # first attempt to last record
    end_to_end: float  # workflow start to result
    counts: PassCounts

    @property
    def contacts_per_second(self) -> float:
        return self.contacts / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


async def run(contacts: int, batch: int, checks_off: bool) -> None:
    began = time.perf_counter()
    async with bench_servers(pool_size=4) as (env, engine, url), smtp_sink() as (port, _):
        settings = Settings(database_url=url, smtp_host="127.0.0.1", smtp_port=port, _env_file=None)
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        await create_synthetic_list(engine, "bench", contacts=contacts, seed=7)
        print(
            f"list of {contacts:,} contacts created in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        await create_campaign(engine, "bench", load_strategy(ONE_PASS), ONE_PASS)
        await create_campaign(engine, "bench-off", load_strategy(ONE_PASS), ONE_PASS)
        await set_policy(engine, ALL_CHECKS, campaign="bench")
        off = None
        if checks_off:
            async with build_worker(
                env.client, settings, engine=engine, task_queue=queue, checks=False
            ):
                off = await one_pass(env, engine, "bench-off", queue, checks=False)
        rows_per_second = await ceiling(engine, batch)
        async with build_worker(env.client, settings, engine=engine, task_queue=queue):
            on = await one_pass(env, engine, "bench", queue, checks=True)
        print(
            f"ceiling (bare COPY loop, batches of {batch:,}): {rows_per_second:,.0f} rows/s",
            flush=True,
        )
        print(
            f"ours, checks on: {on.contacts_per_second:,.0f} contacts/s,"
            f" {on.rows_per_second:,.0f} rows/s",
            flush=True,
        )
        print(
            f"ratio to the ceiling: contacts/s {on.contacts_per_second / rows_per_second:.3f},"
            f" rows/s {on.rows_per_second / rows_per_second:.3f} (goal 0.5)",
            flush=True,
        )
        if off is not None:
            print(
                f"checks off: {off.contacts_per_second:,.0f} contacts/s"
                f" ({off.contacts_per_second / rows_per_second:.3f} of the ceiling);"
                f" checks on / off: {on.contacts_per_second / off.contacts_per_second:.2f}",
                flush=True,
            )
    print(f"bench took {time.perf_counter() - began:.0f}s", flush=True)


async def one_pass(
    env: WorkflowEnvironment, engine: AsyncEngine, campaign: str, queue: str, *, checks: bool
) -> PassFigures:
    """Run the campaign's one voice pass over the list, printing progress and figures."""
    started = time.perf_counter()
    launched = await start_sub_campaign(
        env.client, engine, campaign=campaign, list_name="bench", task_queue=queue
    )
    sub_id = launched.sub_campaign.id
    result = asyncio.ensure_future(launched.handle.result())
    while not result.done():
        await asyncio.wait([result], timeout=PROGRESS_SECONDS)
        if not result.done():
            print(f"  {await handled(engine, sub_id):,} contacts handled", flush=True)
    await result
    end_to_end = time.perf_counter() - started
    plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
    history = await launched.handle.fetch_history()
    async with driver_connection(engine) as connection:
        seconds = await connection.fetchval(
            "SELECT extract(epoch FROM (SELECT max(updated_at) FROM pass_progress"
            " WHERE sub_campaign_id = $1) - (SELECT min(attempted_at) FROM attempts"
            " WHERE sub_campaign_id = $1))",
            sub_id,
        )
    counts = plan.passes[0].counts
    figures = PassFigures(
        contacts=counts.selected,
        rows=sum(counts.results.values()) + sum(counts.skip_reasons.values()),
        seconds=float(seconds),
        end_to_end=end_to_end,
        counts=counts,
    )
    print(
        f"voice pass, checks {'on' if checks else 'off'}: {counts.selected:,} selected,"
        f" {counts.attempted:,} attempted, {figures.rows:,} ledger rows"
        f" (skips {dict(counts.skip_reasons)}) in {figures.seconds:.2f}s ="
        f" {figures.contacts_per_second:,.0f} contacts/s, {figures.rows_per_second:,.0f} rows/s;"
        f" end to end {end_to_end:.2f}s",
        flush=True,
    )
    print(f"history: {len(history.events)} events for the day run with one pass", flush=True)
    return figures


async def handled(engine: AsyncEngine, sub_id: int) -> int:
    """Contacts the sub-campaign's passes have attempted or skipped so far (pass totals)."""
    async with driver_connection(engine) as connection:
        return int(
            await connection.fetchval(
                "SELECT coalesce(sum(attempted + skipped), 0) FROM pass_reach"
                " WHERE sub_campaign_id = $1",
                sub_id,
            )
        )


async def ceiling(engine: AsyncEngine, batch: int) -> float:
    """Rows/s of a bare loop that builds attempt rows like the pass's and COPYs them into
    the ledger in batches of `batch` (a transaction each); the rows are deleted after.

    Its contacts and devices are the list's (each contact's first voice device), its
    results cycle through the simulator's voice outcomes with a skip now and then, under
    a sub-campaign of the bench and a pass number no pass uses.
    """
    sub = await register_sub_campaign(
        engine, campaign="bench-off", list_name="bench", name="ceiling"
    )
    async with driver_connection(engine) as connection:
        pairs = await connection.fetch(
            "SELECT DISTINCT ON (d.contact_id) d.contact_id, d.id FROM devices d"
            " WHERE d.kind IN ('wireless', 'landline') ORDER BY d.contact_id, d.position"
        )
        results = (
            ("delivered_machine", None),
            ("no_answer", None),
            ("delivered_person", None),
            ("busy", None),
            ("delivered_machine", None),
            ("skipped", "recent_conversation"),
            ("hang_up_on_machine", None),
            ("no_answer", None),
        )
        day = datetime.now(UTC).date()
        head = (sub.id, sub.campaign_id, day, CEILING_PASS)
        rows_written = 0
        started = time.perf_counter()
        for start in range(0, len(pairs), batch):
            now = datetime.now(UTC)
            rows = []
            for n, (contact_id, device_id) in enumerate(pairs[start : start + batch], start):
                result, reason = results[n % len(results)]
                rows.append(
                    (*head, contact_id, 0 if reason else device_id, 0, "voice", result, reason, now)
                )
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "attempts", records=rows, columns=ATTEMPT_COLUMNS
                )
            rows_written += len(rows)
        seconds = time.perf_counter() - started
        await connection.execute(
            "DELETE FROM attempts WHERE sub_campaign_id = $1 AND pass_number = $2",
            sub.id,
            CEILING_PASS,
        )
        await connection.execute("VACUUM attempts")
    rate = rows_written / seconds
    print(
        f"ceiling: {rows_written:,} rows COPYed in {seconds:.2f}s = {rate:,.0f} rows/s", flush=True
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000, help="rows per COPY of the ceiling")
    parser.add_argument(
        "--no-checks-off",
        dest="checks_off",
        action="store_false",
        help="skip the pass with the checks off (then the checks-on pass sees no history)",
    )
    args = parser.parse_args()
    if args.contacts < 1 or args.batch < 1:
        parser.error("--contacts and --batch must be at least 1")
    asyncio.run(run(args.contacts, args.batch, args.checks_off))


if __name__ == "__main__":
    main()
