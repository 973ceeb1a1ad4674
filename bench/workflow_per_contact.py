"""csm's one workflow per sub-campaign against the common design, one workflow per contact.

Same dev server, same database, same list, same run:
(a) ours: one sub-campaign workflow whose voice pass (csm's real pass activity,
    zero-latency simulator) works the whole list, contact policy off (the journey
    checks none) and then on;
(b) theirs: a `ContactJourney` workflow per contact (bench/baseline_workflows.py)
    for a sample of the same list, one activity per device attempt; the activity
    reads the device, draws the same simulator outcome and writes the same attempt
    row to the ledger. Its worker allows 100 workflow tasks and 100 activities at
    once, caches 2,000 workflows and has 20 database connections; the starter
    keeps 50 starts in flight and awaits up to 200 results at once.
Both are timed end to end, from the first start to the last workflow result.
Prints contacts/s of each and the ratio ours / theirs (issue 8's goal: >= 1,000x).

    python bench/workflow_per_contact.py --contacts 100000 --sample 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.worker import Worker

from bench.baseline_workflows import ATTEMPT_DEVICE, ContactJourney, DeviceAttempt, JourneyInput
from bench.stack import EVERY_DAY, BenchStack, bench_stack, task_queue, with_morning_zone
from csm.campaigns import create_campaign
from csm.channels import AttemptRequest
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.control import start_sub_campaign
from csm.database import create_engine, driver_connection
from csm.exit import run_and_exit
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from csm.vocabulary import Channel, SkipReason
from workflows.subcampaign import SubCampaignWorkflow

ONE_PASS = f"""
[[passes]]
name = "voice"
channel = "voice"
allowed_days = {EVERY_DAY}
"""
LIST = "per-contact"
#: The per-contact worker: what a team running this design would configure on 2 cores.
JOURNEY_WORKFLOW_TASKS = 100
JOURNEY_ACTIVITIES = 100
JOURNEY_CACHE = 2000
JOURNEY_CONNECTIONS = 10  # pool size; as many again may overflow
STARTS_IN_FLIGHT = 50
#: Results awaited at once: each is a long poll, and a namespace takes at most 1,000 pollers.
RESULT_POLLS = 200


class JourneyActivities:
    """The journey's one activity, on the worker's own engine and the same simulator."""

    def __init__(self, engine: AsyncEngine, seed: int):
        self.engine = engine
        self.carrier = SimulatedCarrier(SimulatorConfig(seed=seed))
        self.zones: dict[str, ZoneInfo] = {}

    @activity.defn(name=ATTEMPT_DEVICE)
    async def attempt_device(self, attempt: DeviceAttempt) -> str:
        """Read the device and its contact, attempt it, write the attempt row: the same row
        (and the same outcome function) as csm's pass writes for this device."""
        async with driver_connection(self.engine) as connection:
            row = await connection.fetchrow(
                "SELECT d.value, c.timezone, c.consent_voice FROM devices d"
                " JOIN contacts c ON c.id = d.contact_id WHERE d.id = $1",
                attempt.device_id,
            )
            now = datetime.now(UTC)
            if not row["consent_voice"]:
                device_id, result, reason = 0, "skipped", str(SkipReason.NO_CONSENT)
            else:
                zone_name = row["timezone"] or "America/Chicago"
                zone = self.zones.get(zone_name) or self.zones.setdefault(
                    zone_name, ZoneInfo(zone_name)
                )
                outcome = await self.carrier.attempt(
                    AttemptRequest(
                        attempt_key=f"{attempt.sub_campaign_id}-{attempt.day:%Y%m%d}-"
                        f"{attempt.pass_number}-{attempt.contact_id}-{attempt.device_id}-0",
                        day=attempt.day,
                        pass_number=attempt.pass_number,
                        contact_id=attempt.contact_id,
                        device_id=attempt.device_id,
                        try_number=0,
                        device_kind=attempt.device_kind,
                        address=row["value"],
                        channel=Channel.VOICE,
                        local_hour=now.astimezone(zone).hour,
                    )
                )
                device_id, result, reason = attempt.device_id, outcome.result, None
            await connection.execute(
                "INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,"
                " device_id, try_number, channel, result, skip_reason, attempted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, 0, 'voice', $7, $8, $9) ON CONFLICT DO NOTHING",
                attempt.sub_campaign_id,
                attempt.campaign_id,
                attempt.day,
                attempt.pass_number,
                attempt.contact_id,
                device_id,
                result,
                reason,
                now,
            )
        return result


async def ours(stack: BenchStack, campaign: str, *, checks: bool) -> tuple[float, int, date]:
    """Run the one-pass sub-campaign over the whole list; (seconds, contacts, day)."""
    queue = task_queue("ours")
    async with stack.worker(queue, checks=checks):
        started = time.perf_counter()
        launched = await start_sub_campaign(
            stack.client, stack.engine, campaign=campaign, list_name=LIST, task_queue=queue
        )
        summary = await launched.handle.result()
        seconds = time.perf_counter() - started
        plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
    counts = plan.passes[0].counts
    assert counts is not None and summary.state == "completed", summary
    assert plan.day is not None
    print(
        f"ours, policy {'on' if checks else 'off'}: one sub-campaign workflow, "
        f"{counts.selected:,} contacts, {sum(counts.results.values()):,} attempt rows "
        f"in {seconds:.2f}s end to end = {counts.selected / seconds:,.0f} contacts/s",
        flush=True,
    )
    return seconds, counts.selected, plan.day


async def sample_journeys(
    engine: AsyncEngine, sample: int, sub_campaign_id: int, campaign_id: int, day: date
) -> list[JourneyInput]:
    """The first `sample` contacts of the list, each with its voice devices in the pass's
    order (wireless, then landline; by position) — ids and kinds only."""
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            """
            WITH chosen AS (
              SELECT m.contact_id FROM list_members m JOIN lists l ON l.id = m.list_id
              WHERE l.name = $1 ORDER BY m.contact_id LIMIT $2)
            SELECT c.contact_id, d.id AS device_id, d.kind FROM chosen c
            JOIN devices d ON d.contact_id = c.contact_id AND d.kind IN ('wireless', 'landline')
            ORDER BY c.contact_id, array_position(ARRAY['wireless', 'landline'], d.kind),
                     d.position
            """,
            LIST,
            sample,
        )
    journeys: dict[int, JourneyInput] = {}
    for row in rows:
        journey = journeys.get(row["contact_id"])
        if journey is None:
            journey = journeys[row["contact_id"]] = JourneyInput(
                sub_campaign_id=sub_campaign_id,
                campaign_id=campaign_id,
                day=day,
                pass_number=1,
                contact_id=row["contact_id"],
                devices=[],
            )
        journey.devices.append((row["device_id"], row["kind"]))
    return list(journeys.values())


async def theirs(stack: BenchStack, sample: int, day: date) -> tuple[float, int, int]:
    """One ContactJourney workflow per sampled contact; (seconds, contacts, sub-campaign id)."""
    ref = await register_sub_campaign(
        stack.engine, campaign="theirs", list_name=LIST, name="per-contact"
    )
    journeys = await sample_journeys(stack.engine, sample, ref.id, ref.campaign_id, day)
    queue = task_queue("theirs")
    engine = create_engine(stack.settings.database_url, pool_size=JOURNEY_CONNECTIONS)
    starts = asyncio.Semaphore(STARTS_IN_FLIGHT)
    waits = asyncio.Semaphore(RESULT_POLLS)

    async def journey(one: JourneyInput) -> str:
        async with starts:
            handle = await stack.client.start_workflow(
                ContactJourney.run,
                one,
                id=f"journey-{queue}-{one.contact_id}",
                task_queue=queue,
            )
        async with waits:  # the server refuses more long polls than its namespace limit
            return await handle.result()

    try:
        async with Worker(
            stack.client,
            task_queue=queue,
            workflows=[ContactJourney],
            activities=[JourneyActivities(engine, stack.settings.simulator_seed).attempt_device],
            max_concurrent_workflow_tasks=JOURNEY_WORKFLOW_TASKS,
            max_concurrent_activities=JOURNEY_ACTIVITIES,
            max_cached_workflows=JOURNEY_CACHE,
        ):
            started = time.perf_counter()
            results = await asyncio.gather(*(journey(one) for one in journeys))
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    print(
        f"theirs: {len(results):,} ContactJourney workflows (one per contact, one activity "
        f"per device attempt) in {seconds:.2f}s end to end = {len(results) / seconds:,.1f} "
        f"contacts/s (worker: {JOURNEY_WORKFLOW_TASKS} workflow tasks, {JOURNEY_ACTIVITIES} "
        f"activities at once, {STARTS_IN_FLIGHT} starts in flight)",
        flush=True,
    )
    return seconds, len(results), ref.id


async def same_outcomes(engine: AsyncEngine, theirs_id: int, ours_id: int) -> tuple[int, int]:
    """How many of the journeys' attempt rows ours wrote identically (device and result):
    both designs draw from the same outcome function, so they should nearly all agree
    (an attempt either side of 17:00 local may draw from the evening table)."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT count(*), count(o.id) FROM attempts t LEFT JOIN attempts o"
                    " ON o.sub_campaign_id = :ours AND o.day = t.day AND o.pass_number = 1"
                    " AND o.contact_id = t.contact_id AND o.device_id = t.device_id"
                    " AND o.try_number = 0 AND o.result = t.result"
                    " WHERE t.sub_campaign_id = :theirs"
                ),
                {"ours": ours_id, "theirs": theirs_id},
            )
        ).one()
    return row[1], row[0]


async def run(contacts: int, sample: int) -> None:
    if sample < 1 or contacts < 1:
        raise SystemExit("--contacts and --sample must be at least 1")
    if sample > contacts:
        raise SystemExit(f"--sample {sample} is larger than the list (--contacts {contacts})")
    async with bench_stack() as stack:
        started = time.perf_counter()
        await create_synthetic_list(stack.engine, LIST, contacts=contacts, seed=7)
        print(
            f"list of {contacts:,} contacts created in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        source = with_morning_zone(ONE_PASS)
        strategy = load_strategy(source)
        for campaign in ("ours-off", "ours-on", "theirs"):
            await create_campaign(stack.engine, campaign, strategy, source)
        off_seconds, off_contacts, day = await ours(stack, "ours-off", checks=False)
        on_seconds, on_contacts, _ = await ours(stack, "ours-on", checks=True)
        their_seconds, their_contacts, theirs_id = await theirs(stack, sample, day)
        their_rate = their_contacts / their_seconds
        for label, seconds, selected in (
            ("policy off", off_seconds, off_contacts),
            ("policy on", on_seconds, on_contacts),
        ):
            ratio = selected / seconds / their_rate
            print(
                f"ratio ours ({label}) / theirs: {ratio:,.0f}x "
                f"(goal >= 1,000x: {'met' if ratio >= 1000 else 'not met'})",
                flush=True,
            )
        ours_off = await register_sub_campaign(stack.engine, campaign="ours-off", list_name=LIST)
        agree, rows = await same_outcomes(stack.engine, theirs_id, ours_off.id)
        print(f"fairness: {agree:,} of the journeys' {rows:,} attempt rows equal ours", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="the list, for ours")
    parser.add_argument("--sample", type=int, default=2_000, help="contacts, for theirs")
    args = parser.parse_args()
    run_and_exit(lambda: asyncio.run(run(args.contacts, args.sample)))


if __name__ == "__main__":
    main()
