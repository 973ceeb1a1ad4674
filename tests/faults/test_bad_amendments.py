"""Malformed amendments sent to a running sub-campaign: refused, and nothing changes.

One sub-campaign runs for the whole module (real dev server, real worker).
Its first pass is done and its second waits 6 hours after it, so the day is
open and every pass but the first can still be amended. Each case sends the
same bad amendment twice:

- as the validated `amend` update: refused with WorkflowUpdateFailedError,
  whose message says what is wrong and where (which operation, which pass);
- as the fire-and-forget `amend` signal: logged as `rejected` in the plan's
  amendment log with the same kind of message.

After each case the plan's passes are exactly as before (definitions and
statuses), and the workflow is still running; the last test checks that once
more and stops it.

The campaign's zone is a fixed-offset zone where it is about 02:00 now, so
"6 hours after the first pass" is always later today, whenever the suite runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from csm.amendments import Amendment, SkipPass
from csm.control import start_sub_campaign
from csm.plan import PassStatus
from csm.settings import Settings
from tests.helpers import campaign_with_list, wait_for_plan
from worker import build_worker
from workflows.subcampaign import PlanView, SubCampaignWorkflow


def early_morning_zone(now: datetime) -> str:
    """A fixed-offset zone (Etc/GMT±N) where the local time is 02:xx at `now`."""
    offset = 2 - now.astimezone(UTC).hour  # hours east of UTC
    if offset < -12:
        offset += 24
    if offset == 0:
        return "UTC"
    return f"Etc/GMT{-offset:+d}"  # the tz database's sign is inverted: Etc/GMT-3 is UTC+3


def strategy(zone: str) -> str:
    return f"""
timezone = "{zone}"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "first"
channel = "sms"

[[passes]]
name = "later"
channel = "voice"
after = "6h"

[[passes]]
name = "calls"
channel = "voice"
agents = "collectors"
filter = "not ever('reached')"

[[passes]]
name = "mail"
channel = "email"
"""


@dataclass(frozen=True)
class Running:
    handle: WorkflowHandle
    zone: str


@pytest.fixture(scope="module")
async def running(
    client: Client, engine: AsyncEngine, settings: Settings
) -> AsyncIterator[Running]:
    zone = early_morning_zone(datetime.now(UTC))
    campaign, list_name = await campaign_with_list(engine, strategy(zone), contacts=6, seed=11)
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        handle = launched.handle
        await wait_for_plan(
            handle,
            lambda p: (
                p.passes[0].status is PassStatus.DONE and p.passes[1].status is PassStatus.WAITING
            ),
            "pass 1 done and pass 2 waiting",
        )
        yield Running(handle, zone)
        description = await handle.describe()
        if description.status is not None and description.status.name == "RUNNING":
            await handle.signal(SubCampaignWorkflow.stop)
        await asyncio.wait_for(handle.result(), 60)


@dataclass(frozen=True)
class BadAmendment:
    id: str
    payload: Any  # as JSON would carry it
    says: tuple[str, ...]  # in the update's failure and in the signal's log entry


def ops(*operations: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"operations": list(operations), **rest}


SKIP_3 = {"op": "skip", "target": 3}
PAST = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)

CASES = [
    BadAmendment(
        "unknown_pass_name",
        ops({"op": "skip", "target": "evening"}),
        ("operation 1 (skip 'evening')", "unknown pass 'evening'", "2 'later'"),
    ),
    BadAmendment(
        "unknown_pass_number",
        ops({"op": "set_filter", "target": 9, "filter": "attempts = 0"}),
        ("operation 1 (set_filter 9)", "unknown pass 9"),
    ),
    BadAmendment(
        "skip_a_done_pass",
        ops({"op": "skip", "target": 1}),
        ("operation 1 (skip 1)", "pass 1 'first' is done", "only passes that have not started"),
    ),
    BadAmendment(
        "set_filter_bad_syntax",
        ops({"op": "set_filter", "target": "calls", "filter": "attempts < and busy"}),
        ("operation 1 (set_filter 'calls')", "column"),
    ),
    BadAmendment(
        "set_filter_unknown_field",
        ops({"op": "set_filter", "target": 3, "filter": "balanse > 100"}),
        ("operation 1 (set_filter 3)", "unknown field 'balanse'"),
    ),
    BadAmendment(
        "set_filter_unknown_response_group",
        ops({"op": "set_filter", "target": 3, "filter": "not ever('promised')"}),
        ("operation 1 (set_filter 3)", "unknown response group 'promised'"),
    ),
    BadAmendment(
        # Pass 3's agents take calls: texting it cannot keep its agent group.
        "set_channel_the_pass_cannot_use",
        ops({"op": "set_channel", "target": 3, "channel": "sms"}),
        ("operation 1 (set_channel 3)", "sms pass cannot have an agent group"),
    ),
    BadAmendment(
        "set_channel_unknown",
        ops({"op": "set_channel", "target": 3, "channel": "fax"}),
        ("operations.0.set_channel.channel", "'voice', 'dialer', 'sms' or 'email'"),
    ),
    BadAmendment(
        "set_window_end_before_start",
        ops(
            {
                "op": "set_window",
                "target": 2,
                "window": {"start": "17:00", "end": "09:00", "zone": "campaign"},
            }
        ),
        ("operations.0.set_window.window", "end 09:00 must be after start 17:00"),
    ),
    BadAmendment(
        "set_window_already_past",
        ops(
            {
                "op": "set_window",
                "target": 2,
                "window": {"start": "00:00", "end": "00:30", "zone": "campaign"},
            }
        ),
        ("operation 1 (set_window 2)", "window 00:00-00:30 is already past"),
    ),
    BadAmendment(
        "set_pacing_concurrency_zero",
        ops({"op": "set_pacing", "target": 2, "pacing": {"concurrency": 0}}),
        ("operations.0.set_pacing.pacing.concurrency", "greater than 0"),
    ),
    BadAmendment(
        "move_after_a_pass_that_is_not_there",
        ops({"op": "move", "target": 4, "after": 7}),
        ("operation 1 (move 4)", "unknown pass 7"),
    ),
    BadAmendment(
        "move_a_done_pass",
        ops({"op": "move", "target": "first", "after": 4}),
        ("operation 1 (move 'first')", "pass 1 'first' is done"),
    ),
    BadAmendment(
        "add_after_an_invalid_pass",
        ops(
            {
                "op": "add_after",
                "target": 2,
                "definition": {"name": "texts", "channel": "sms", "devices": ["landline"]},
            }
        ),
        ("operations.0.add_after.definition.devices", "landline cannot be used by an sms pass"),
    ),
    BadAmendment(
        "add_after_a_name_taken",
        ops({"op": "add_after", "target": 2, "definition": {"name": "mail", "channel": "sms"}}),
        ("operation 1 (add_after 2)", "a pass named 'mail' exists already"),
    ),
    BadAmendment(
        # All or nothing: the good first operation must not apply either.
        "good_operation_then_bad_one",
        ops(SKIP_3, {"op": "skip", "target": "nope"}),
        ("operation 2 (skip 'nope')", "unknown pass 'nope'"),
    ),
    BadAmendment(
        "until_in_the_past",
        ops(SKIP_3, until=PAST.isoformat()),
        (f"until {PAST:%H:%M} UTC is already past",),
    ),
    BadAmendment(
        "until_without_time_zone",
        ops(SKIP_3, until="2030-01-01T10:00:00"),
        ("until", "time zone"),
    ),
    BadAmendment("no_operations", ops(), ("operations", "at least 1 item")),
    BadAmendment("51_operations", ops(*[SKIP_3] * 51), ("operations", "at most 50 items")),
    BadAmendment(
        "author_too_long", ops(SKIP_3, author="a" * 101), ("author", "at most 100 characters")
    ),
    BadAmendment(
        "unknown_operation",
        ops({"op": "explode", "target": 3}),
        ("operations.0", "'explode'", "does not match any of the expected tags"),
    ),
    BadAmendment(
        "a_string_not_an_amendment",
        "skip pass 3 please",
        ("malformed amendment", "dictionary"),
    ),
    BadAmendment(
        "a_dict_of_junk",
        {"drop": "table", "passes": [1, 2, 3]},
        ("operations", "Field required"),
    ),
]


def failure_message(error: WorkflowUpdateFailedError) -> tuple[str, str]:
    """The refusal's message, as `csm amend` shows it (the ApplicationError's message), and
    the whole chain of causes for when an assertion fails."""
    cause = error.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    chain = []
    current: BaseException | None = cause
    while current is not None:
        chain.append(f"{type(current).__name__}: {current}")
        current = current.__cause__
    return message, " <- ".join(chain)


def snapshot(plan: PlanView) -> list[tuple[int, dict[str, Any], str, bool]]:
    return [
        (p.number, p.definition.model_dump(mode="json"), p.status.value, p.amended)
        for p in plan.passes
    ]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_amendment_is_refused_and_the_plan_stays(
    running: Running, case: BadAmendment
) -> None:
    """The update and the signal are checked independently: a problem with one does not
    hide what the other does. Every problem found is listed in the failure."""
    handle = running.handle
    before = await handle.query(SubCampaignWorkflow.plan_query)
    assert before.state == "running"
    problems: list[str] = []

    try:
        await handle.execute_update("amend", case.payload, result_type=PlanView)
    except WorkflowUpdateFailedError as refused:
        message, chain = failure_message(refused)
        missing = [fragment for fragment in case.says if fragment not in message]
        if missing or "\n" in message:
            problems.append(
                f"update refused, but its message is not one line saying {case.says}: {chain}"
            )
    else:
        problems.append("the update was accepted")
    after_update = await handle.query(SubCampaignWorkflow.plan_query)
    if snapshot(after_update) != snapshot(before):
        problems.append("the refused update changed the plan")

    logged = len(after_update.amendments)
    await handle.signal("amend", case.payload)
    plan = await wait_for_plan(
        handle, lambda p: len(p.amendments) > logged, "the signal's log entry"
    )
    entry = plan.amendments[-1]
    missing = [fragment for fragment in case.says if fragment not in entry.message]
    if len(plan.amendments) != logged + 1 or entry.outcome != "rejected":
        problems.append(f"the signal was not logged as one rejected amendment: {entry}")
    elif missing or "\n" in entry.message:
        problems.append(
            f"signal rejected, but the log is not one line saying {case.says}: {entry.message!r}"
        )
    if plan.state != "running":
        problems.append(f"the workflow is {plan.state} after the signal")
    if snapshot(plan) != snapshot(before):
        problems.append("the rejected signal changed the plan")

    assert not problems, "\n".join(problems)


async def test_after_every_bad_amendment_the_plan_is_the_defined_one(running: Running) -> None:
    handle = running.handle
    plan = await handle.query(SubCampaignWorkflow.plan_query)
    assert plan.state == "running"
    assert [p.definition.name for p in plan.passes] == ["first", "later", "calls", "mail"]
    assert [p.status for p in plan.passes] == [
        PassStatus.DONE,
        PassStatus.WAITING,
        PassStatus.PENDING,
        PassStatus.PENDING,
    ]
    assert not any(p.amended or p.added for p in plan.passes)
    assert all(a.outcome == "rejected" for a in plan.amendments)
    assert len(plan.amendments) >= len(CASES)

    # Still alive and listening: a good amendment applies, and stop ends it.
    applied = await handle.execute_update(
        SubCampaignWorkflow.amend_update,
        Amendment(operations=[SkipPass(target=3)], author="faults", reason="still listening"),
    )
    assert applied.passes[2].status is PassStatus.SKIPPED
    assert await handle.execute_update(SubCampaignWorkflow.lifecycle, "stop") == "stopped"
    summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.state == "stopped"
