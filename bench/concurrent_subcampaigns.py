"""Many campaigns at once: N sub-campaigns over one shared list on K worker processes (issue 16).

Each sub-campaign is of a campaign of its own with the pass pattern of a collections
morning: voice on both devices, a retry of the no-answers, texts to the unreached,
e-mail to the rest. All run over one list of M contacts, under a global policy with
Regulation F's 7-in-7 voice cap and 2 texts a device a day, started one after another
on `python worker.py` processes, on a Temporal dev server tuned as `csm dev up` runs
it, an embedded PostgreSQL (or DATABASE_URL's) and a counting SMTP sink.

Before them, in the same run and on the same workers, one voice pass alone (both
devices) over a list of its own (M contacts, 20,000 at least): the rate the concurrent run is
compared with. Printed: both rates and their ratio, failed activity attempts (from
every history), `unknown` rows, accounts over a cap (counted from the ledger), and
the longest stall of a running pass (the longest time one pass went without a ledger
row, from its start to its end). `--carrier-speed` sends voice and SMS through the
local Twilio-compatible carrier and the webhook receiver (in this process) instead of
the simulator. The last line is (one line)

    concurrent: N sub-campaigns, ratio R, failed activity attempts F, unknown U,
    over cap C, longest stall S s

    python bench/concurrent_subcampaigns.py --sub-campaigns 20 --contacts 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.stack import EVERY_DAY, OPEN_HOURS, bench_servers
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import Launched, start_sub_campaign
from csm.exit import run_and_exit
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.carrier import carrier_and_receiver
from csm.testing.histories import activity_failures
from csm.testing.ledger import over_caps
from csm.testing.servers import counting_smtp_sink
from csm.testing.workers import environment, worker_processes

SCENARIO = f"""
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "voice, both devices"
channel = "voice"
devices = ["wireless", "landline"]
template = "Hello $first_name, this is a payment reminder."
pacing = {{ concurrency = 20 }}
allowed_days = {EVERY_DAY}

[[passes]]
name = "retry the no-answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
template = "Hello again $first_name."
after = "1s"
pacing = {{ concurrency = 20 }}
allowed_days = {EVERY_DAY}

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
template = "Your balance is ${{balance}}."
pacing = {{ concurrency = 20 }}
allowed_days = {EVERY_DAY}

[[passes]]
name = "e-mail the rest"
channel = "email"
filter = "not ever('reached')"
template = "Your balance is ${{balance}}."
subject = "Payment reminder"
pacing = {{ concurrency = 20 }}
allowed_days = {EVERY_DAY}
"""
ALONE = f"""
timezone = "America/Chicago"
[[passes]]
name = "voice, both devices"
channel = "voice"
devices = ["wireless", "landline"]
pacing = {{ concurrency = 20 }}
allowed_days = {EVERY_DAY}
"""
CAPS = """
[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]

[[caps]]
name = "sms_2_a_day"
max = 2
channels = ["sms"]
per = "device"
"""
#: Contacts of the pass alone at least: a shorter pass is over before its rate is steady.
ALONE_CONTACTS = 20_000


@dataclass
class Figures:
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / max(self.seconds, 1e-3)


async def ledger_span(engine: AsyncEngine, subs: list[int]) -> Figures:
    """Ledger rows of the sub-campaigns and the time from their first row to their last."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT count(*), extract(epoch FROM max(attempted_at) - min(attempted_at))"
                    " FROM attempts WHERE sub_campaign_id = ANY(:s)"
                ),
                {"s": subs},
            )
        ).one()
    return Figures(row[0], float(row[1] or 0))


async def by_channel(engine: AsyncEngine, subs: list[int]) -> dict[str, Figures]:
    """Each channel's ledger rows and the time from its first row to its last: e-mail is
    bound by the SMTP server, not by csm, and weighs on the aggregate as its share grows."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT channel, count(*),"
                " extract(epoch FROM max(attempted_at) - min(attempted_at))"
                " FROM attempts WHERE sub_campaign_id = ANY(:s) GROUP BY channel ORDER BY 1"
            ),
            {"s": subs},
        )
        return {channel: Figures(n, float(span or 0)) for channel, n, span in rows}


async def unknown_rows(engine: AsyncEngine, subs: list[int]) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(
            text(
                "SELECT count(*) FROM attempts"
                " WHERE sub_campaign_id = ANY(:s) AND result = 'unknown'"
            ),
            {"s": subs},
        )


async def longest_stall(engine: AsyncEngine, subs: list[int]) -> float:
    """The longest a running pass went without a ledger row: from its start to its first
    row, and between any two of its rows (a pass waiting for its `after` delay has not
    started yet)."""
    async with engine.connect() as connection:
        return float(
            await connection.scalar(
                text(
                    """
                    WITH marks AS (
                      SELECT sub_campaign_id, day, pass_number, attempted_at AS at
                        FROM attempts WHERE sub_campaign_id = ANY(:s)
                      UNION ALL
                      SELECT sub_campaign_id, day, pass_number, started_at
                        FROM pass_progress
                        WHERE sub_campaign_id = ANY(:s) AND round = 0 AND started_at IS NOT NULL
                    )
                    SELECT coalesce(max(extract(epoch FROM gap)), 0) FROM (
                      SELECT at - lag(at) OVER (
                        PARTITION BY sub_campaign_id, day, pass_number ORDER BY at) AS gap
                      FROM marks) g
                    """
                ),
                {"s": subs},
            )
        )


async def watch(engine: AsyncEngine, launched: list[Launched]) -> list[str]:
    """Wait for every sub-campaign's result, printing the ledger's progress every 10 s."""
    subs = [one.sub_campaign.id for one in launched]
    results = asyncio.gather(*(one.handle.result() for one in launched))
    began, before = time.perf_counter(), 0
    while True:
        try:
            summaries = await asyncio.wait_for(asyncio.shield(results), 10)
            return [summary.state for summary in summaries]
        except TimeoutError:
            rows = (await ledger_span(engine, subs)).rows
            print(
                f"  {time.perf_counter() - began:5.0f}s: {rows:,} ledger rows"
                f" (+{(rows - before) / 10:,.0f}/s)",
                flush=True,
            )
            before = rows


async def run(args: argparse.Namespace) -> None:
    n, m, k = args.sub_campaigns, args.contacts, args.workers
    async with AsyncExitStack() as stack:
        env, engine, url = await stack.enter_async_context(bench_servers(pool_size=10))
        smtp_port, mail = await stack.enter_async_context(counting_smtp_sink())
        await set_policy(engine, OPEN_HOURS + CAPS, author="bench: open hours, caps")
        settings = Settings(
            database_url=url,
            temporal_address=env.client.service_client.config.target_host,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            _env_file=None,
        )
        routed = "the simulator"
        if args.carrier_speed is not None:
            carrier = await stack.enter_async_context(
                carrier_and_receiver(settings, engine, speed=args.carrier_speed)
            )
            settings, routed = (
                carrier.settings,
                f"the local carrier at speed {args.carrier_speed:g}",
            )
        began = time.perf_counter()
        lists = ["shared"] * n
        if args.own_lists:  # a diagnosis: the same work without accounts in common
            lists = [f"own{i:02d}" for i in range(n)]
        for name in sorted(set(lists)):
            await create_synthetic_list(engine, name, contacts=m, seed=11)
        alone_contacts = args.alone_contacts or max(m, ALONE_CONTACTS)
        await create_synthetic_list(engine, "alone", contacts=alone_contacts, seed=12)
        await create_campaign(engine, "alone", load_strategy(ALONE), ALONE)
        for i in range(n):
            await create_campaign(engine, f"c{i:02d}", load_strategy(SCENARIO), SCENARIO)
        print(
            f"{n} campaigns, a shared list of {m:,} contacts and one of {alone_contacts:,}"
            " for the pass alone made in"
            f" {time.perf_counter() - began:.1f}s; {k} worker process(es), voice and SMS to"
            f" {routed}, simulator latency {args.latency_ms:g} ms; {os.cpu_count()} cores",
            flush=True,
        )
        queue = f"concurrent-{uuid.uuid4().hex[:6]}"
        worker_env = environment(settings, task_queue=queue, simulator_latency_ms=args.latency_ms)
        processes = await stack.enter_async_context(
            worker_processes(worker_env, k, client=env.client)
        )

        alone = await start(env.client, engine, "alone", "alone", queue)
        if (await alone.handle.result()).state != "completed":
            raise SystemExit("the pass alone did not complete")
        one = await ledger_span(engine, [alone.sub_campaign.id])
        print(
            f"one voice pass alone: {one.rows:,} rows in {one.seconds:.1f}s"
            f" = {one.rate:,.0f} rows/s",
            flush=True,
        )

        print(f"{n} sub-campaigns over the shared list:", flush=True)
        launched = [await start(env.client, engine, f"c{i:02d}", lists[i], queue) for i in range(n)]
        states = await watch(engine, launched)
        subs = [each.sub_campaign.id for each in launched]
        together = await ledger_span(engine, subs)
        channels = await by_channel(engine, subs)
        print(
            "by channel: "
            + ", ".join(
                f"{name} {f.rows:,} rows in {f.seconds:.0f}s = {f.rate:,.0f}/s"
                for name, f in channels.items()
            ),
            flush=True,
        )
        failures: Counter[str] = Counter()
        for sub_campaign in [alone, *launched]:
            failures.update(await activity_failures(sub_campaign.handle))
        failed = sum(failures.values())
        for line, times in failures.most_common(5):
            print(f"  failed activity attempt x{times}: {line[:300]}", flush=True)
        unknown = await unknown_rows(engine, [*subs, alone.sub_campaign.id])
        over = [await over_caps(engine, name) for name in sorted(set(lists))]
        voice_over, sms_over = sum(v for v, _ in over), sum(s for _, s in over)
        capped = voice_over + sms_over
        if capped:
            print(f"  over a cap: {voice_over} accounts (voice), {sms_over} devices (SMS)")
        stall = await longest_stall(engine, subs)
        ratio = together.rate / one.rate
        done = sum(state == "completed" for state in states)
        print(
            f"together: {together.rows:,} rows in {together.seconds:.1f}s ="
            f" {together.rate:,.0f} rows/s aggregate; {done} of {n} completed;"
            f" {mail.value:,} e-mails sent;"
            f" {sum(p.returncode is None for p in processes)} of {k} workers alive",
            flush=True,
        )
        print(
            f"concurrent: {n} sub-campaigns, ratio {ratio:.2f}, failed activity attempts"
            f" {failed}, unknown {unknown}, over cap {capped}, longest stall {stall:.1f} s",
            flush=True,
        )


async def start(
    client: Client, engine: AsyncEngine, campaign: str, list_name: str, queue: str
) -> Launched:
    return await start_sub_campaign(
        client,
        engine,
        campaign=campaign,
        list_name=list_name,
        task_queue=queue,
        name=f"{campaign}-{uuid.uuid4().hex[:6]}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sub-campaigns", type=int, default=20, help="sub-campaigns at once (20)")
    parser.add_argument(
        "--contacts", type=int, default=5_000, help="contacts of the shared list (5000)"
    )
    parser.add_argument(
        "--alone-contacts",
        type=int,
        default=0,
        help="contacts of the pass alone (default: --contacts, 20000 at least)",
    )
    parser.add_argument(
        "--own-lists",
        action="store_true",
        help="each sub-campaign over a list of its own (no shared accounts): a diagnosis",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="simulator latency per attempt"
    )
    parser.add_argument(
        "--carrier-speed",
        type=float,
        default=None,
        help="send voice and SMS through the local carrier at this speed (0: outcomes at once)",
    )
    args = parser.parse_args()
    if args.sub_campaigns < 1 or args.contacts < 1 or args.workers < 1:
        parser.error("--sub-campaigns, --contacts and --workers must be at least 1")
    run_and_exit(lambda: asyncio.run(run(args)))


if __name__ == "__main__":
    main()
