"""Process and server faults during a 3-pass sub-campaign over 20,000 contacts.

Each fault runs the same sub-campaign (voice, then SMS, then e-mail to whoever
no pass reached) in its own database of a private stack (tests/faults/process_stack.py)
and compares the ledger with a fault-free run of the same seed: the same rows
(pass, try, contact, device, result, skip reason), every selected contact with a
result or a skip reason, and the workflow completed. The simulated carrier keeps
a journal and honours attempt keys, as an idempotent provider does: the test
also reads that journal to check from the carrier's side that no attempt was
placed twice and none is missing from the ledger, and counts the SMTP sink's
messages against the e-mail pass's `success` rows.

Faults: SIGKILL of the worker at 10+ random moments of the voice and SMS passes
(a new worker each time); the Temporal dev server stopped and started again on
its state file mid-pass; PostgreSQL restarted mid-pass; the SMTP server down for
30 s during the e-mail pass.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from csm.campaigns import create_campaign
from csm.control import start_sub_campaign
from csm.devstack.smtp_sink import messages
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.workers import WorkerProcess
from tests.faults.process_stack import FaultStack, Run
from tests.test_subcampaign_control import assert_exact

CONTACTS = 20_000
STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "call everyone"
channel = "voice"
pacing = { concurrency = 20 }

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
pacing = { concurrency = 20 }

[[passes]]
name = "e-mail the rest"
channel = "email"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
subject = "Payment reminder"
pacing = { concurrency = 20 }
"""
Row = tuple[int, int, int, int, str, str | None]
KILLS_PER_PASS = 5

pytestmark = pytest.mark.timeout(900)


@dataclass
class Scenario:
    """A run in progress: what a fault needs to act on it."""

    stack: FaultStack
    run: Run
    task_queue: str
    latency_ms: float
    worker: WorkerProcess = field(init=False)
    notes: list[str] = field(default_factory=list)

    async def restart_worker(self) -> None:
        self.worker = await self.stack.start_worker(
            self.run, self.task_queue, latency_ms=self.latency_ms
        )

    async def rows(self, pass_number: int) -> int:
        async with self.run.engine.connect() as connection:
            return await connection.scalar(
                text("SELECT count(*) FROM attempts WHERE pass_number = :p"), {"p": pass_number}
            )

    async def until_rows(self, pass_number: int, at_least: int, within: float = 120) -> int:
        async with asyncio.timeout(within):
            while True:
                if (count := await self.rows(pass_number)) >= at_least:
                    return count
                await asyncio.sleep(0.05)

    async def pass_finished(self, pass_number: int) -> bool:
        async with self.run.engine.connect() as connection:
            return bool(
                await connection.scalar(
                    text("SELECT bool_and(finished) FROM pass_progress WHERE pass_number = :p"),
                    {"p": pass_number},
                )
            )


Fault = Callable[[Scenario], Awaitable[None]]


@dataclass
class Outcome:
    ledger: list[Row]
    journal_lines: list[str]
    messages: int
    notes: list[str]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    stack = FaultStack(tmp_path_factory.mktemp("fault-stack"))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.close()


async def run_sub_campaign(
    stack: FaultStack, name: str, fault: Fault | None, *, latency_ms: float
) -> Outcome:
    """The sub-campaign in a fresh database, `fault` acting on it while it runs."""
    run = await stack.new_run(name)
    stack.start_smtp(run.mail)
    await create_campaign(run.engine, "faults", load_strategy(STRATEGY), STRATEGY)
    await create_synthetic_list(run.engine, "faults-list", contacts=CONTACTS, seed=8)
    scenario = Scenario(stack, run, f"faults-{name}", latency_ms)
    await scenario.restart_worker()
    started = time.monotonic()
    try:
        assert stack.client is not None
        launched = await start_sub_campaign(
            stack.client,
            run.engine,
            campaign="faults",
            list_name="faults-list",
            task_queue=scenario.task_queue,
            name=f"faults-{name}",
        )
        if fault is not None:
            await fault(scenario)
        summary = await asyncio.wait_for(launched.handle.result(), 600)
        assert summary.state == "completed"
        await assert_exact(run.engine, launched.sub_campaign.id)
        async with run.engine.connect() as connection:
            ledger = [
                tuple(row)
                for row in await connection.execute(
                    text(
                        "SELECT pass_number, try_number, contact_id, device_id, result,"
                        " skip_reason FROM attempts ORDER BY 1, 2, 3, 4"
                    )
                )
            ]
            carrier_keys = {
                key
                for (key,) in await connection.execute(
                    text(
                        "SELECT sub_campaign_id || '-' || to_char(day, 'YYYYMMDD') || '-' ||"
                        " pass_number || '-' || contact_id || '-' || device_id || '-' ||"
                        " try_number FROM attempts WHERE channel IN ('voice', 'sms')"
                        " AND result <> 'skipped'"
                    )
                )
            }
    finally:
        await scenario.worker.stop(grace=60)
    lines = run.journal.read_text().splitlines()
    journal_keys = [line.split("\t")[0] for line in lines]
    # From the carrier's side: every attempt it placed is in the ledger, once, and the ledger
    # records no simulator attempt the carrier did not place.
    assert len(journal_keys) == len(set(journal_keys)), "an attempt key was placed twice"
    assert set(journal_keys) == carrier_keys
    notes = [*scenario.notes, f"took {time.monotonic() - started:.1f} s"]
    print(f"{name}: {len(ledger)} ledger rows; " + "; ".join(notes))
    return Outcome(ledger, lines, len(messages(run.mail)), notes)


@pytest.fixture(scope="module")
async def fault_free(stack: FaultStack) -> Outcome:
    return await run_sub_campaign(stack, "fault_free", None, latency_ms=0)


def assert_same_ledger(faulted: Outcome, reference: Outcome) -> None:
    if faulted.ledger != reference.ledger:
        ours, theirs = Counter(faulted.ledger), Counter(reference.ledger)
        extra, missing = list((ours - theirs).elements()), list((theirs - ours).elements())
        raise AssertionError(
            f"ledger differs from the fault-free run: {len(extra)} rows not in it "
            f"(e.g. {extra[:5]}), {len(missing)} of its rows missing (e.g. {missing[:5]})"
        )
    assert faulted.messages == reference.messages == _successful_emails(reference)


def _successful_emails(outcome: Outcome) -> int:
    return sum(1 for row in outcome.ledger if row[0] == 3 and row[4] == "success")


def test_fault_free_run_covers_all_three_passes(fault_free: Outcome) -> None:
    per_pass = Counter(row[0] for row in fault_free.ledger)
    assert set(per_pass) == {1, 2, 3}
    assert len({row[2] for row in fault_free.ledger if row[0] == 1}) == CONTACTS
    assert _successful_emails(fault_free) > 1000  # the e-mail pass has real work
    assert fault_free.messages == _successful_emails(fault_free)


async def test_worker_sigkilled_at_random_moments(stack: FaultStack, fault_free: Outcome) -> None:
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)

    async def kill_repeatedly(scenario: Scenario) -> None:
        kills = []
        for pass_number in (1, 2):  # the simulator's passes: voice, then SMS
            for _ in range(KILLS_PER_PASS):
                # Let the new worker pick the pass up again (its rows move), then kill it at
                # a random moment of its work.
                moved_from = await scenario.rows(pass_number)
                await scenario.until_rows(pass_number, moved_from + 1, within=180)
                await asyncio.sleep(rng.uniform(0.05, 1.5))
                assert not await scenario.pass_finished(pass_number), "the pass ended first"
                await scenario.worker.kill()
                kills.append(f"pass {pass_number} at {await scenario.rows(pass_number)} rows")
                await scenario.restart_worker()
        scenario.notes.append(f"seed {seed}, {len(kills)} kills: " + ", ".join(kills))

    faulted = await run_sub_campaign(stack, "sigkill", kill_repeatedly, latency_ms=20)
    assert_same_ledger(faulted, fault_free)


async def test_temporal_server_restarted_mid_pass(stack: FaultStack, fault_free: Outcome) -> None:
    async def restart_temporal(scenario: Scenario) -> None:
        at = await scenario.until_rows(1, 4000)
        began = time.monotonic()
        await scenario.stack.restart_temporal()
        scenario.notes.append(
            f"Temporal restarted at {at} voice rows, down {time.monotonic() - began:.1f} s"
        )

    faulted = await run_sub_campaign(stack, "temporal", restart_temporal, latency_ms=5)
    assert_same_ledger(faulted, fault_free)


async def test_postgres_restarted_mid_pass(stack: FaultStack, fault_free: Outcome) -> None:
    async def restart_postgres(scenario: Scenario) -> None:
        at = await scenario.until_rows(1, 4000)
        await scenario.stack.restart_postgres(down_for=2.0)
        scenario.notes.append(f"PostgreSQL restarted at {at} voice rows")

    faulted = await run_sub_campaign(stack, "postgres", restart_postgres, latency_ms=5)
    assert_same_ledger(faulted, fault_free)


async def test_smtp_down_for_30_seconds_in_the_email_pass(
    stack: FaultStack, fault_free: Outcome
) -> None:
    async def smtp_outage(scenario: Scenario) -> None:
        at = await scenario.until_rows(3, 300, within=300)
        scenario.stack.stop_smtp()
        stopped = await scenario.rows(3)
        await asyncio.sleep(30)
        during = await scenario.rows(3)
        scenario.stack.start_smtp(scenario.run.mail)
        scenario.notes.append(
            f"SMTP down at {at} e-mail rows; {during - stopped} rows recorded while it was down"
        )

    faulted = await run_sub_campaign(stack, "smtp", smtp_outage, latency_ms=0)
    assert_same_ledger(faulted, fault_free)
