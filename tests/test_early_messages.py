"""Messages sent at the wrong moment never wedge a sub-campaign (real dev server, real worker).

Each sub-campaign here is started with NO worker polling its task queue, so every message
below reaches it before its first workflow task, i.e. before the day's plan exists. Then a
worker starts: the sub-campaign runs to its end, and the amendment log says what became of
each message (held amendments applied or rejected with the reason; pause, resume and stop
applied or refused). Last, amendments that arrive after today's passes are over are
logged rejected with the reason while the workflow keeps going.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowUpdateFailedError

from csm.amendments import AddPass, Amendment, AmendmentRecord, SetFilter, SkipPass
from csm.control import Launched, start_sub_campaign
from csm.plan import PassStatus
from csm.settings import Settings
from csm.strategy.model import PassDefinition
from tests.helpers import campaign_with_list, wait_for_plan
from tests.test_subcampaign_days import midday_zone
from worker import build_worker
from workflows.subcampaign import PlanView, SubCampaignSummary, SubCampaignWorkflow

EARLY = "received before the day's plan"
HELD = "held until the day's plan was ready"


def one_day(zone: str) -> str:
    return f"""
timezone = "{zone}"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "first"
channel = "sms"

[[passes]]
name = "second"
channel = "voice"

[[passes]]
name = "third"
channel = "voice"
filter = "not ever('reached')"
"""


def two_days(zone: str) -> str:
    return f"""
timezone = "{zone}"
[[passes]]
name = "today"
channel = "sms"

[[passes]]
name = "tomorrow"
channel = "sms"
days_to_wait = 1
"""


async def unstarted(engine: AsyncEngine, client: Client, strategy: str) -> tuple[Launched, str]:
    """A sub-campaign whose workflow is started on a task queue no worker polls yet."""
    campaign, list_name = await campaign_with_list(engine, strategy, contacts=20)
    queue = f"early-{uuid.uuid4().hex[:8]}"
    launched = await start_sub_campaign(
        client, engine, campaign=campaign, list_name=list_name, task_queue=queue
    )
    return launched, queue


async def run_to_end(
    client: Client, settings: Settings, engine: AsyncEngine, launched: Launched, queue: str
) -> tuple[SubCampaignSummary, PlanView]:
    """Start a worker, let the sub-campaign end; its summary and last plan view."""
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        summary = await asyncio.wait_for(launched.handle.result(), 90)
        return summary, await launched.handle.query(SubCampaignWorkflow.plan_query)


def entry(plan: PlanView, match: Callable[[AmendmentRecord], bool]) -> AmendmentRecord:
    found = [record for record in plan.amendments if match(record)]
    assert len(found) == 1, f"expected one matching log entry in {plan.amendments}"
    return found[0]


async def attempts(engine: AsyncEngine, sub_id: int) -> dict[int, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT pass_number, count(*) FROM attempts WHERE sub_campaign_id = :s"
                " GROUP BY pass_number"
            ),
            {"s": sub_id},
        )
        return dict(rows.all())


async def test_amendments_before_the_plan_are_held_then_applied_or_rejected(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    launched, queue = await unstarted(engine, client, one_day(midday_zone()))
    handle = launched.handle
    await handle.signal(
        "amend", {"operations": [{"op": "skip", "target": 2}], "author": "ui", "reason": "early"}
    )
    await handle.signal("amend", {"operations": [{"op": "skip", "target": "nope"}]})
    await handle.signal("amend", {"operations": [{"op": "explode", "target": 1}]})
    await handle.signal("amend")  # no input at all (the Temporal UI allows it)
    await handle.signal("amend", args=[{"operations": []}, "a second input"])
    soon = datetime.now(UTC) + timedelta(seconds=1)
    await handle.signal("amend", {"operations": [{"op": "skip", "target": 3}], "until": soon})
    query = asyncio.create_task(handle.query(SubCampaignWorkflow.plan_query))
    held_update = asyncio.create_task(
        handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(operations=[SetFilter(target=3, filter="attempts = 0")], author="cli"),
        )
    )
    doomed_update = asyncio.create_task(
        handle.execute_update(
            SubCampaignWorkflow.amend_update, Amendment(operations=[SkipPass(target="ghost")])
        )
    )
    await asyncio.sleep(2)  # no worker yet: nothing has run, and `soon` is past
    assert not (query.done() or held_update.done() or doomed_update.done())

    summary, plan = await run_to_end(client, settings, engine, launched, queue)

    assert summary.state == "completed"
    before_plan = await query  # answered, before the plan existed
    assert before_plan.day is None and before_plan.passes == []
    assert {r.outcome for r in before_plan.amendments if r.operations} <= {"pending"}
    updated = await held_update
    assert updated.passes[2].definition.filter == "attempts = 0" and updated.passes[2].amended
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await doomed_update
    assert "unknown pass 'ghost'" in str(refused.value.cause)
    assert HELD in str(refused.value.cause)

    skip_2 = entry(plan, lambda r: r.operations == ["skip 2"])
    assert (skip_2.outcome, skip_2.message, skip_2.author) == ("applied", HELD, "ui")
    nope = entry(plan, lambda r: r.operations == ["skip 'nope'"])
    assert nope.outcome == "rejected" and "unknown pass 'nope'" in nope.message
    expired = entry(plan, lambda r: r.operations == ["skip 3"])
    assert expired.outcome == "rejected" and "is already past" in expired.message
    malformed = [r for r in plan.amendments if not r.operations]
    assert [r.outcome for r in malformed] == ["rejected"] * 3
    assert all(r.message.startswith("malformed amendment") for r in malformed)
    assert malformed[2].message == "malformed amendment: 1 input expected, got 2"
    assert entry(plan, lambda r: r.author == "cli").outcome == "applied"
    ghost = entry(plan, lambda r: r.operations == ["skip 'ghost'"])
    assert ghost.outcome == "rejected" and "unknown pass 'ghost'" in ghost.message
    assert len(plan.amendments) == 8

    assert [p.status for p in plan.passes] == [
        PassStatus.DONE,
        PassStatus.SKIPPED,
        PassStatus.DONE,
    ]
    assert plan.passes[1].note == "skipped by amendment"
    ran = await attempts(engine, launched.sub_campaign.id)
    assert 2 not in ran and ran[1] == 20


async def test_pause_and_resume_before_the_plan_are_logged_and_take_effect(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    launched, queue = await unstarted(engine, client, one_day(midday_zone()))
    handle = launched.handle
    await handle.signal(SubCampaignWorkflow.pause)
    await handle.signal(SubCampaignWorkflow.resume)
    await handle.signal("resume")  # it runs already: nothing to do
    await handle.signal("pause", "with an input")  # an input the signal does not take
    resume = asyncio.create_task(handle.execute_update(SubCampaignWorkflow.lifecycle, "resume"))
    await asyncio.sleep(1)
    assert not resume.done()

    async with build_worker(client, settings, engine=engine, task_queue=queue):
        state = await resume
        summary = await asyncio.wait_for(handle.result(), 90)
        plan = await handle.query(SubCampaignWorkflow.plan_query)
    assert state == "running"
    assert summary.state == "completed"
    assert [(r.operations, r.outcome) for r in plan.amendments] == [
        (["pause"], "applied"),
        (["resume"], "applied"),
        (["resume"], "rejected"),
        (["pause"], "applied"),
        (["resume"], "applied"),
    ]
    assert all(r.message.startswith(EARLY) for r in plan.amendments)
    assert plan.amendments[2].message.endswith("nothing to do: the sub-campaign is running")
    assert all(p.status is PassStatus.DONE for p in plan.passes)


async def test_stop_before_the_plan_ends_the_day_before_any_pass(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    launched, queue = await unstarted(engine, client, one_day(midday_zone()))
    handle = launched.handle
    await handle.signal("amend", {"operations": [{"op": "skip", "target": 2}]})
    await handle.signal(SubCampaignWorkflow.stop)
    await handle.signal("amend", {"operations": [{"op": "skip", "target": 3}]})
    await handle.signal("stop", args=["again", "with two inputs"])
    update = asyncio.create_task(
        handle.execute_update(
            SubCampaignWorkflow.amend_update, Amendment(operations=[SkipPass(target=3)])
        )
    )
    await asyncio.sleep(1)

    summary, plan = await run_to_end(client, settings, engine, launched, queue)

    assert summary.state == "stopped"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update  # refused cleanly (stopped), not left hanging nor wedging the workflow
    assert "the sub-campaign is stopped" in str(refused.value.cause)
    assert [(r.operations, r.outcome) for r in plan.amendments] == [
        (["skip 2"], "rejected"),
        (["stop"], "applied"),
        (["skip 3"], "rejected"),
        (["stop"], "rejected"),
    ]
    assert plan.amendments[0].message == f"{HELD}, then: the sub-campaign is stopped"
    assert plan.amendments[1].message == f"{EARLY}; the sub-campaign is now stopped"
    assert plan.amendments[2].message == "the sub-campaign is stopped"
    assert plan.amendments[3].message.endswith("nothing to do: the sub-campaign is stopped")
    assert all(p.status is PassStatus.PENDING for p in plan.passes)
    assert await attempts(engine, launched.sub_campaign.id) == {}


async def test_amendments_after_todays_passes_are_rejected_and_the_day_goes_on(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, two_days(midday_zone()), contacts=20)
    queue = f"late-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        handle = launched.handle
        await wait_for_plan(
            handle, lambda p: p.passes[0].status is PassStatus.DONE, "today's only pass"
        )
        evening = PassDefinition(name="evening", channel="sms")
        add = {"op": "add_after", "target": 1, "definition": {"name": "evening", "channel": "sms"}}
        await handle.signal("amend", {"operations": [add]})
        await handle.signal("amend", {"operations": [{"op": "skip", "target": 1}]})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                SubCampaignWorkflow.amend_update,
                Amendment(operations=[AddPass(target=1, definition=evening)]),
            )
        plan = await wait_for_plan(handle, lambda p: len(p.amendments) == 2, "two log entries")
        assert plan.state == "running"  # asleep until tomorrow, not wedged
        assert [p.definition.name for p in plan.passes] == ["today"]
        assert [r.outcome for r in plan.amendments] == ["rejected", "rejected"]
        for record in plan.amendments:
            assert record.message.startswith("today's passes are all over")
        assert "today's passes are all over" in str(refused.value.cause)
        assert await handle.execute_update(SubCampaignWorkflow.lifecycle, "stop") == "stopped"
        summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.state == "stopped"
