"""Faults around the Twilio adapter: calls really in flight through the local carrier and
the webhook receiver while the worker is SIGKILLed, the receiver is down, or the carrier
loses callbacks (issue 15).

Each scenario runs a sub-campaign in its own database of a private stack
(tests/faults/process_stack.py) with a worker process started from `worker.py` whose
voice and SMS go through the Twilio adapter to a local carrier served in this process
(the witness: it counts every placement per attempt key and knows what its world drew
for each) and whose callbacks go to a webhook receiver, also served here so it can be
stopped and started again on the same port. The adapter's outcome deadline is short
(OUTCOME_TIMEOUT_S), so lost callbacks are looked up within the test's time.

After each run, whatever the fault: no attempt key placed twice, every placement the
carrier took is one ledger row, no `unknown`, every ledger result is the carrier's draw
for its key, every selected contact has its row, every provider_attempts row settled,
and no callback was an orphan (a row is written before its POST, so every callback has
one).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from csm.campaigns import create_campaign
from csm.control import start_sub_campaign
from csm.devstack.carrier.app import create_app as create_carrier_app
from csm.devstack.carrier.carrier import Carrier, CarrierConfig
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.carrier import serve_asgi
from csm.testing.servers import free_port
from csm.testing.workers import WorkerProcess
from csm.vocabulary import Channel
from csm.webhooks.app import create_app as create_receiver_app
from tests.faults.process_stack import FaultStack, Run
from tests.test_subcampaign_control import assert_exact

#: The carrier's speed: a call's ring, detection and talk (at most 69 s in the real world)
#: last at most 1.4 s, so calls are really in flight, and each batch of a pass (8 contacts
#: a lane: csm.passes.sweep.smallest_batch) lasts several seconds.
SPEED = 0.02
#: The adapter's deadline before it looks an attempt up: longer than the longest call at
#: SPEED, so a lookup finds a call ended (its final status never came: lost, or the
#: receiver was down) rather than still going.
OUTCOME_TIMEOUT_S = 3.0
KILLS = 5
OUTAGE_S = 30.0

VOICE = """
timezone = "America/Chicago"
[[passes]]
name = "reminder call"
channel = "voice"
template = "Hello $first_name, this is a payment reminder."
pacing = { concurrency = 40 }
"""
VOICE_THEN_SMS = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "reminder call"
channel = "voice"
template = "Hello $first_name, this is a payment reminder."
pacing = { concurrency = 100 }

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
pacing = { concurrency = 100 }
"""

pytestmark = pytest.mark.timeout(420)


class LookupCounter:
    """Wraps the carrier's ASGI app and counts the adapter's deadline lookups: by SID
    (`GET .../Calls/{Sid}.json`) and by the account's list (`GET .../Calls.json?To=...`)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.by_sid = 0
        self.by_list = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.endswith(("/Calls.json", "/Messages.json")):
                self.by_list += 1
            elif "/Calls/" in path or "/Messages/" in path:
                self.by_sid += 1
        await self.app(scope, receive, send)


class Receiver:
    """The webhook receiver on a fixed port, stopped and started again by the test."""

    def __init__(self, settings: Settings, run: Run, port: int):
        self.settings, self.run, self.port = settings, run, port
        self._serving: AsyncExitStack | None = None

    async def start(self) -> None:
        app = create_receiver_app(self.settings, self.run.engine)
        serving = AsyncExitStack()
        await serving.enter_async_context(serve_asgi(app, self.port))
        self._serving = serving

    async def stop(self) -> None:
        """Shut it down: its port refuses connections until `start`."""
        if self._serving is not None:
            await self._serving.aclose()
            self._serving = None


@dataclass
class Line:
    """The carrier (with its lookup counter) and the receiver one run talks to."""

    carrier: Carrier
    lookups: LookupCounter
    receiver: Receiver
    worker_settings: dict[str, object]


@asynccontextmanager
async def carrier_line(run: Run, **faults: object) -> AsyncIterator[Line]:
    defaults = Settings(_env_file=None)
    receiver_port = free_port()
    public_url = f"http://127.0.0.1:{receiver_port}"
    config = CarrierConfig(
        account_sid=defaults.twilio_account_sid,
        auth_token=defaults.twilio_auth_token.get_secret_value(),
        public_url=public_url,
        speed=SPEED,
    )
    for name, value in faults.items():
        setattr(config.faults, name, value)
    app = create_carrier_app(config)
    counter = LookupCounter(app)
    async with serve_asgi(counter) as carrier_url:
        receiver_settings = defaults.model_copy(
            update={"database_url": run.url, "public_url": public_url}
        )
        receiver = Receiver(receiver_settings, run, receiver_port)
        await receiver.start()
        try:
            yield Line(
                app.state.carrier,
                counter,
                receiver,
                {
                    "voice_provider": "twilio",
                    "sms_provider": "twilio",
                    "twilio_base_url": carrier_url,
                    "public_url": public_url,
                    "twilio_outcome_timeout_s": OUTCOME_TIMEOUT_S,
                },
            )
        finally:
            await receiver.stop()


@dataclass
class Scenario:
    """A run in progress: what a fault needs to act on it."""

    stack: FaultStack
    run: Run
    line: Line
    task_queue: str
    worker: WorkerProcess = field(init=False)
    notes: list[str] = field(default_factory=list)

    async def restart_worker(self) -> None:
        self.worker = await self.stack.start_worker(
            self.run, self.task_queue, latency_ms=0, **self.line.worker_settings
        )

    async def rows(self, pass_number: int = 1) -> int:
        async with self.run.engine.connect() as connection:
            return await connection.scalar(
                text("SELECT count(*) FROM attempts WHERE pass_number = :p"), {"p": pass_number}
            )

    async def pass_finished(self, pass_number: int = 1) -> bool:
        async with self.run.engine.connect() as connection:
            return bool(
                await connection.scalar(
                    text("SELECT bool_and(finished) FROM pass_progress WHERE pass_number = :p"),
                    {"p": pass_number},
                )
            )

    async def until(
        self, condition: Callable[[], Awaitable[bool]], within: float, what: str
    ) -> None:
        try:
            async with asyncio.timeout(within):
                while True:
                    if await condition():
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"waited {within:.0f} s for {what}") from None


Fault = Callable[[Scenario], Awaitable[None]]


@dataclass
class Report:
    """What a run produced, for the assertions of each scenario and the log."""

    sub_campaign: int
    rows: int
    lookups_by_sid: int
    lookups_by_list: int
    orphans: int
    callbacks: dict[str, int]
    placements: int
    channels: set[str]
    notes: list[str]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStack]:
    stack = FaultStack(tmp_path_factory.mktemp("provider-fault-stack"))
    await stack.start()
    try:
        yield stack
    finally:
        await stack.close()


async def run_through_carrier(
    stack: FaultStack,
    name: str,
    strategy: str,
    fault: Fault,
    *,
    contacts: int,
    **faults: object,
) -> Report:
    """The sub-campaign in a fresh database through the carrier, `fault` acting on it
    while it runs; then every check the issue asks of the ledger and the carrier."""
    started = time.monotonic()
    run = await stack.new_run(name)
    await create_campaign(run.engine, name, load_strategy(strategy), strategy)
    await create_synthetic_list(run.engine, f"{name}-list", contacts=contacts, seed=15)
    async with carrier_line(run, **faults) as line:
        scenario = Scenario(stack, run, line, f"provider-{name}")
        await scenario.restart_worker()
        try:
            assert stack.client is not None
            launched = await start_sub_campaign(
                stack.client,
                run.engine,
                campaign=name,
                list_name=f"{name}-list",
                task_queue=scenario.task_queue,
                name=name,
            )
            await fault(scenario)
            summary = await asyncio.wait_for(launched.handle.result(), 300)
        finally:
            await scenario.worker.stop(grace=30)
        # every placement played out (its callbacks sent or given up) before counting
        await scenario.until(lambda: _no_tasks(line.carrier), 30, "the carrier's playouts")
        assert summary.state == "completed"
        sub = launched.sub_campaign.id
        await assert_exact(run.engine, sub)
        ledger = await assert_settled_as_drawn(run, sub, line.carrier)
        orphans = await _orphans(run)
        counts = line.carrier.sender.counts
        report = Report(
            sub_campaign=sub,
            rows=len(ledger),
            lookups_by_sid=line.lookups.by_sid,
            lookups_by_list=line.lookups.by_list,
            orphans=orphans,
            callbacks={
                "sent": counts.sent,
                "failed": counts.failed,
                "lost": counts.lost,
                "repeated": counts.repeated,
                "refused": counts.refused,
            },
            placements=line.carrier.record.calls + line.carrier.record.messages,
            channels={row[5] for row in ledger},
            notes=scenario.notes,
        )
    # a row is written before its POST: every callback has an attempt to match
    assert report.orphans == 0, f"{report.orphans} callbacks matched no attempt"
    print(
        f"\n{name}: {report.rows} ledger rows, {report.placements} placements,"
        f" lookups {report.lookups_by_sid} by SID + {report.lookups_by_list} by list,"
        f" {report.orphans} orphans, callbacks {report.callbacks};"
        f" {''.join(note + '; ' for note in report.notes)}took {time.monotonic() - started:.1f} s"
    )
    return report


async def _no_tasks(carrier: Carrier) -> bool:
    return not carrier.tasks


async def _orphans(run: Run) -> int:
    async with run.engine.connect() as connection:
        return await connection.scalar(text("SELECT count(*) FROM provider_orphans"))


async def assert_settled_as_drawn(run: Run, sub: int, carrier: Carrier) -> list[tuple]:
    """The ledger's attempts, checked against the carrier's record and world."""
    async with run.engine.connect() as connection:
        ledger = [
            tuple(row)
            for row in await connection.execute(
                text(
                    "SELECT day, pass_number, contact_id, device_id, try_number, channel, result"
                    " FROM attempts WHERE sub_campaign_id = :s AND device_id <> 0"
                ),
                {"s": sub},
            )
        ]
        unsettled = await connection.scalar(
            text(
                "SELECT count(*) FROM provider_attempts"
                " WHERE sub_campaign_id = :s AND state <> 'settled'"
            ),
            {"s": sub},
        )
    record = carrier.record
    twice = {key: n for key, n in record.placements.items() if n > 1}
    assert not twice, f"attempt keys placed more than once: {twice}"
    results = [row[6] for row in ledger]
    assert "unknown" not in results, f"{results.count('unknown')} attempts settled unknown"
    wrong = []
    for day, pass_number, contact, device, try_number, channel, result in ledger:
        key = f"{sub}-{day:%Y%m%d}-{pass_number}-{contact}-{device}-{try_number}"
        drawn = carrier.world.result(key, Channel(channel))
        if result != drawn:
            wrong.append((key, result, drawn))
        if result == "opted_out":  # the carrier refused the POST: nothing placed
            assert (record.placements[key], record.refused[key]) == (0, 1), key
        else:
            assert record.placements[key] == 1, f"{key} placed {record.placements[key]} times"
    assert not wrong, f"{len(wrong)} results differ from the carrier's draw, e.g. {wrong[:5]}"
    # every placement the carrier took is one ledger row: nothing placed that csm lost
    placed = {key for key in record.placements if key.startswith(f"{sub}-")}
    assert len(placed) == sum(1 for r in results if r != "opted_out") == len(record.placements)
    assert unsettled == 0, f"{unsettled} provider_attempts rows not settled"
    return ledger


async def _moved(scenario: Scenario, calls: int, rows: int) -> bool:
    return scenario.line.carrier.record.calls > calls or await scenario.rows() > rows


async def test_worker_sigkilled_with_calls_in_flight(stack: FaultStack) -> None:
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)

    async def kill_repeatedly(scenario: Scenario) -> None:
        carrier = scenario.line.carrier
        kills = []
        for _ in range(KILLS):
            calls, rows = carrier.record.calls, await scenario.rows()
            # the (new) worker has the pass again: it places calls or records results
            await scenario.until(
                lambda calls=calls, rows=rows: _moved(scenario, calls, rows),
                120,
                "the worker to work the pass",
            )
            await asyncio.sleep(rng.uniform(0.05, 1.5))

            async def in_flight() -> bool:
                return bool(carrier.tasks)

            await scenario.until(in_flight, 10, "calls in flight")
            assert not await scenario.pass_finished(), "the pass ended before the kills"
            flying = len(carrier.tasks)
            await scenario.worker.kill()
            kills.append(f"{flying} in flight at {await scenario.rows()} rows")
            await scenario.restart_worker()
        scenario.notes.append(f"seed {seed}, {len(kills)} kills: " + ", ".join(kills))

    # Enough contacts that five kills, each after a worker restart, still find calls to
    # place: a batch is 320 contacts (40 lanes, 8 each), and a restarted worker first works
    # its batch in flight again (answered from provider_attempts, nothing placed).
    report = await run_through_carrier(stack, "sigkill", VOICE, kill_repeatedly, contacts=1000)
    assert report.rows >= 1000


async def test_receiver_down_30_seconds_mid_pass(stack: FaultStack) -> None:
    async def receiver_outage(scenario: Scenario) -> None:
        async def some_rows() -> bool:
            return await scenario.rows() >= 60

        await scenario.until(some_rows, 120, "60 voice rows")
        assert not await scenario.pass_finished(), "the pass ended before the outage"
        line = scenario.line
        failed, before = line.carrier.sender.counts.failed, await scenario.rows()
        await line.receiver.stop()
        await asyncio.sleep(OUTAGE_S)
        during = await scenario.rows() - before
        failed_during = line.carrier.sender.counts.failed - failed
        await line.receiver.start()
        scenario.notes.append(
            f"receiver down {OUTAGE_S:.0f} s: {failed_during} callbacks failed,"
            f" {during} rows recorded meanwhile"
        )
        # the outage cut callbacks off, and the deadline lookups kept the pass going
        assert failed_during > 0
        assert during > 0

    report = await run_through_carrier(stack, "receiver", VOICE, receiver_outage, contacts=400)
    assert report.callbacks["failed"] > 0
    assert report.lookups_by_sid > 0


async def test_carrier_losing_a_tenth_of_callbacks(stack: FaultStack) -> None:
    async def nothing(scenario: Scenario) -> None:
        return None

    report = await run_through_carrier(
        stack,
        "lossy",
        VOICE_THEN_SMS,
        nothing,
        contacts=300,
        lose_callbacks=0.1,
    )
    assert report.callbacks["lost"] > 0
    assert report.lookups_by_sid > 0
    assert report.channels == {"voice", "sms"}
