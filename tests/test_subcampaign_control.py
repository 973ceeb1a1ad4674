"""Managers at work on a running sub-campaign (real dev server): amendments while a pass
runs, rejected updates, malformed signals, pause and resume."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from csm.amendments import Amendment, SetFilter
from csm.channels import Channels
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.control import start_sub_campaign
from csm.plan import PassStatus
from csm.settings import Settings
from csm.vocabulary import Channel
from tests.helpers import campaign_with_list, wait_for_plan
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "quick"
channel = "voice"
pacing = { concurrency = 50 }

[[passes]]
name = "slow"
channel = "sms"
pacing = { concurrency = 2 }

[[passes]]
name = "last"
channel = "voice"
filter = "not ever('reached')"
"""


def slow_channels(latency: float) -> Channels:
    carrier = SimulatedCarrier(SimulatorConfig(seed=3, latency_seconds=latency))
    return Channels({Channel.VOICE: carrier, Channel.SMS: carrier, Channel.DIALER: carrier})


async def ledger_count(engine: AsyncEngine, sub_id: int, pass_number: int) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(
            text("SELECT count(*) FROM attempts WHERE sub_campaign_id = :s AND pass_number = :p"),
            {"s": sub_id, "p": pass_number},
        )


async def assert_exact(engine: AsyncEngine, sub_id: int) -> None:
    """Every selected contact has rows in every pass that ran; no attempt twice."""
    async with engine.connect() as connection:
        missing = await connection.scalar(
            text(
                """SELECT count(*) FROM pass_selections s WHERE s.sub_campaign_id = :s
               AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.sub_campaign_id = s.sub_campaign_id
               AND a.day = s.day AND a.pass_number = s.pass_number
               AND a.contact_id = s.contact_id)"""
            ),
            {"s": sub_id},
        )
        duplicates = await connection.scalar(
            text(
                """SELECT count(*) FROM (SELECT 1 FROM attempts WHERE sub_campaign_id = :s
               GROUP BY day, pass_number, contact_id, device_id, try_number
               HAVING count(*) > 1) d"""
            ),
            {"s": sub_id},
        )
    assert (missing, duplicates) == (0, 0)


@pytest.fixture
async def running(client: Client, engine: AsyncEngine, settings: Settings):
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=200)
    queue = f"control-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, settings, engine=engine, channels=slow_channels(0.04), task_queue=queue
    ):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        yield launched
        with contextlib.suppress(RPCError):  # the test may have let it complete
            await launched.handle.signal(SubCampaignWorkflow.stop)
        await asyncio.wait_for(launched.handle.result(), 60)


async def test_amendment_while_pass_2_runs_changes_pass_3_not_pass_2(running) -> None:
    handle = running.handle
    await wait_for_plan(handle, lambda p: p.passes[1].status is PassStatus.RUNNING, "pass 2")
    before = await handle.query(SubCampaignWorkflow.plan_query)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(operations=[SetFilter(target="slow", filter="attempts = 0")]),
        )
    assert "is running; only passes that have not started can change" in str(rejected.value.cause)
    unchanged = await handle.query(SubCampaignWorkflow.plan_query)
    assert [p.definition for p in unchanged.passes] == [p.definition for p in before.passes]
    assert not any(p.amended for p in unchanged.passes)

    plan = await handle.execute_update(
        SubCampaignWorkflow.amend_update,
        Amendment(
            operations=[SetFilter(target=3, filter="attempts_today = 0")],
            author="manager",
            reason="tighten",
        ),
    )
    assert plan.passes[2].definition.filter == "attempts_today = 0" and plan.passes[2].amended
    assert plan.passes[1].definition.filter == "" and not plan.passes[1].amended
    assert plan.amendments[-1].outcome == "applied" and plan.amendments[-1].author == "manager"


async def test_malformed_and_invalid_signals_are_logged_as_rejected(running) -> None:
    handle = running.handle
    await wait_for_plan(handle, lambda p: p.passes[1].status is PassStatus.RUNNING, "pass 2")
    await handle.signal("amend", {"operations": [{"op": "explode", "target": 1}]})
    await handle.signal("amend", "not even an object")
    await handle.signal("amend", {"operations": [{"op": "skip", "target": "nope"}]})
    await handle.signal("amend", {"operations": [{"op": "skip", "target": 3}], "author": "ui"})
    plan = await wait_for_plan(handle, lambda p: len(p.amendments) == 4, "four log entries")
    outcomes = [(a.outcome, a.message.split(":")[0]) for a in plan.amendments]
    assert [o for o, _ in outcomes] == ["rejected", "rejected", "rejected", "applied"]
    assert "unknown pass 'nope'" in plan.amendments[2].message
    assert plan.passes[2].status is PassStatus.SKIPPED
    assert plan.state == "running"  # the workflow went on


async def test_pause_and_resume_attempt_every_contact_exactly_once(
    running, engine: AsyncEngine
) -> None:
    handle, sub_id = running.handle, running.sub_campaign.id
    await wait_for_plan(handle, lambda p: p.passes[1].status is PassStatus.RUNNING, "pass 2")
    assert await handle.execute_update(SubCampaignWorkflow.lifecycle, "pause") == "paused"
    plan = await wait_for_plan(
        handle, lambda p: p.passes[1].status is PassStatus.PAUSED, "pass 2 paused"
    )
    settled = await ledger_count(engine, sub_id, 2)
    await asyncio.sleep(1.5)
    assert await ledger_count(engine, sub_id, 2) == settled  # no attempts while paused
    assert settled < 200
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(SubCampaignWorkflow.lifecycle, "pause")
    assert "is paused, not running" in str(refused.value.cause)
    assert await handle.execute_update(SubCampaignWorkflow.lifecycle, "resume") == "running"
    summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.state == "completed"
    plan = await handle.query(SubCampaignWorkflow.plan_query)
    assert plan.passes[1].counts.selected == 200
    assert plan.passes[1].counts.attempted + plan.passes[1].counts.skipped == 200
    await assert_exact(engine, sub_id)


async def test_stop_is_final_and_closes_the_running_pass(running, engine: AsyncEngine) -> None:
    handle, sub_id = running.handle, running.sub_campaign.id
    await wait_for_plan(handle, lambda p: p.passes[1].status is PassStatus.RUNNING, "pass 2")
    assert await handle.execute_update(SubCampaignWorkflow.lifecycle, "stop") == "stopped"
    summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.state == "stopped"
    plan = await handle.query(SubCampaignWorkflow.plan_query)
    assert [p.status for p in plan.passes] == [
        PassStatus.DONE,
        PassStatus.STOPPED,
        PassStatus.PENDING,
    ]
    assert plan.passes[1].counts.skip_reasons.get("stopped", 0) > 0
    await assert_exact(engine, sub_id)
    with pytest.raises(RPCError, match="already completed"):  # a stopped workflow has closed
        await handle.execute_update(SubCampaignWorkflow.lifecycle, "resume")
