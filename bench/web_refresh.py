"""What one live update of the web page costs in database time, on a large sub-campaign.

Builds a list of N contacts (default 1,000,000) and a pass that attempted all of
them (one ledger row each, recorded in batches as a pass records them, each
adding to the pass totals), then times the reads one refresh of a
sub-campaign page makes (csm.web.data.live without the workflow query: pass
counts, agent utilisation, strategy, actions) and the index page's query, next
to a count straight from the ledger (what a refresh would cost without totals).

    python bench/web_refresh.py --contacts 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csm.campaigns import create_campaign
from csm.database import create_engine, driver_connection
from csm.ledger import AttemptRow, PassKey, record_batch
from csm.results import agent_utilisation, ledger_counts
from csm.schedule import campaign_day
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from csm.testing.servers import fresh_database
from csm.web.data import recent_actions, strategy_of

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person"]
[[passes]]
name = "calls"
channel = "voice"
"""
RESULTS = ["no_answer", "delivered_machine", "delivered_person", "busy"]


async def timed(work, repeats: int) -> tuple[float, float]:
    """(p50, max) milliseconds of `work()` over `repeats` runs after one warm-up."""
    await work()
    spent = []
    for _ in range(repeats):
        began = time.perf_counter()
        await work()
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent), max(spent)


async def run(contacts: int, repeats: int) -> None:
    async with fresh_database(os.environ.get("DATABASE_URL")) as url:
        engine = create_engine(url)
        began = time.perf_counter()
        await create_synthetic_list(engine, "big", contacts=contacts, seed=3)
        print(f"list of {contacts:,} contacts in {time.perf_counter() - began:.1f}s", flush=True)
        strategy = load_strategy(STRATEGY)
        await create_campaign(engine, "big", strategy, STRATEGY)
        sub = await register_sub_campaign(engine, campaign="big", list_name="big")
        day = campaign_day(datetime.now(UTC), strategy.timezone)
        began = time.perf_counter()
        async with driver_connection(engine) as connection:
            await connection.execute(
                "INSERT INTO pass_progress (sub_campaign_id, day, pass_number, round, started_at,"
                " selected, cursor, finished, updated_at) VALUES ($1, $2, 1, 0, now(), $3, 0,"
                " false, now())",
                sub.id,
                day,
                contacts,
            )
            ids = [
                r[0]
                for r in await connection.fetch(
                    "SELECT contact_id FROM list_members WHERE list_id = $1 ORDER BY 1", sub.list_id
                )
            ]
            key = PassKey(sub.id, day, 1)
            now = datetime.now(UTC)
            for start in range(0, len(ids), 2000):  # batches, as a pass records them (totals too)
                rows = [
                    AttemptRow(
                        sub.id, sub.campaign_id, day, 1, i, i, 0, "voice", RESULTS[i % 4], None, now
                    )
                    for i in ids[start : start + 2000]
                ]
                await record_batch(connection, key, rows, start + len(rows), start=start)
        print(f"{contacts:,} ledger rows in {time.perf_counter() - began:.1f}s", flush=True)

        async def refresh() -> None:
            await ledger_counts(engine, sub.id, day, [1])
            await agent_utilisation(engine, sub.id, day, 1, "default")
            await strategy_of(engine, sub, day)
            await recent_actions(engine, sub.id)

        async def from_the_ledger() -> None:
            async with driver_connection(engine) as connection:
                await connection.fetch(
                    "SELECT result, skip_reason, count(*), count(DISTINCT contact_id)"
                    " FROM attempts WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = 1"
                    " GROUP BY result, skip_reason",
                    sub.id,
                    day,
                )

        p50, worst = await timed(refresh, repeats)
        print(f"one page refresh (pass totals): p50 {p50:.2f} ms, max {worst:.2f} ms of DB time")
        p50, worst = await timed(from_the_ledger, max(repeats // 10, 3))
        print(f"the same counts from the ledger: p50 {p50:.0f} ms, max {worst:.0f} ms")
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.contacts, args.repeats))


if __name__ == "__main__":
    main()
