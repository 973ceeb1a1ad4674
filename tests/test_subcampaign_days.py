"""Day runs on the time-skipping server: a 3-day strategy, amendments that touch only today,
and an amendment's `until` after which the defined plan applies again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from csm.amendments import Amendment, SetFilter, SkipPass
from csm.control import start_sub_campaign
from csm.plan import PassStatus
from csm.settings import SEARCH_ATTRIBUTES, Settings
from tests.helpers import campaign_with_list, wait_for_plan
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow


def midday_zone() -> str:
    """A fixed-offset zone where it is now about 10:00, so a day's passes fit before midnight."""
    hours = (10 - datetime.now(UTC).hour) % 24
    if hours > 12:
        hours -= 24
    # Etc/GMT zones have inverted signs: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"


def three_days(zone: str) -> str:
    return f"""
timezone = "{zone}"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "day 1 voice"
channel = "voice"

[[passes]]
name = "day 1 sms"
channel = "sms"
filter = "not ever('reached')"
after = "1h"

[[passes]]
name = "day 1 email"
channel = "email"
filter = "not ever('reached')"
after = "2h"

[[passes]]
name = "day 2 voice"
channel = "voice"
filter = "not ever('reached')"
days_to_wait = 1

[[passes]]
name = "day 3 email"
channel = "email"
filter = "not ever('reached')"
days_to_wait = 1
"""


@pytest.fixture(scope="module")
async def registered(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    await time_skipping_env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=time_skipping_env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )
    return time_skipping_env


async def _rows_by_day_and_pass(engine: AsyncEngine, sub_id: int) -> dict[tuple, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT day, pass_number, count(*) FROM attempts WHERE sub_campaign_id = :s"
                " GROUP BY day, pass_number ORDER BY day, pass_number"
            ),
            {"s": sub_id},
        )
        return {(day, number): count for day, number, count in rows}


async def test_amendment_changes_only_today_and_tomorrow_runs_the_defined_strategy(
    registered: WorkflowEnvironment, engine: AsyncEngine, settings: Settings
) -> None:
    client = registered.client
    campaign, list_name = await campaign_with_list(engine, three_days(midday_zone()), contacts=120)
    queue = f"days-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        handle = launched.handle
        plan = await wait_for_plan(
            handle,
            lambda p: p.passes and p.passes[0].status is PassStatus.DONE,
            "day 1's first pass",
        )
        assert [p.number for p in plan.passes] == [1, 2, 3]  # only day 1's passes today
        amended = await handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(
                operations=[
                    SkipPass(target="day 1 email"),
                    SetFilter(target=2, filter="attempts = 99"),
                ],
                author="test",
                reason="skip today's e-mail",
            ),
        )
        assert [p.status for p in amended.passes][2] is PassStatus.SKIPPED
        summary = await asyncio.wait_for(handle.result(), 120)
    assert summary.state == "completed"
    assert summary.days_run == 3
    rows = await _rows_by_day_and_pass(engine, launched.sub_campaign.id)
    days = sorted({day for day, _ in rows})
    assert len(days) == 3 and days[1] - days[0] == timedelta(days=1)
    # Day 1: pass 1 ran; pass 2's amended filter selected nobody; pass 3 was skipped.
    assert set(n for d, n in rows if d == days[0]) == {1}
    # Day 2 and 3 run the defined strategy (passes 4 and 5), untouched by day 1's amendment.
    assert set(n for d, n in rows if d == days[1]) == {4}
    assert set(n for d, n in rows if d == days[2]) == {5}


async def test_until_expiry_restores_the_defined_plan(
    registered: WorkflowEnvironment, engine: AsyncEngine, settings: Settings
) -> None:
    client = registered.client
    campaign, list_name = await campaign_with_list(engine, three_days(midday_zone()), contacts=60)
    queue = f"until-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        handle = launched.handle
        await wait_for_plan(
            handle,
            lambda p: p.passes and p.passes[0].status is PassStatus.DONE,
            "day 1's first pass",
        )
        now = await _workflow_now(registered)
        # Skip the sms pass (due 1h after pass 1) only for the next 30 minutes: it runs anyway.
        await handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(
                operations=[SkipPass(target=2)], until=now + timedelta(minutes=30), author="test"
            ),
        )
        summary = await asyncio.wait_for(handle.result(), 120)
    assert summary.state == "completed"
    rows = await _rows_by_day_and_pass(engine, launched.sub_campaign.id)
    first_day = min(day for day, _ in rows)
    assert {n for d, n in rows if d == first_day} == {1, 2, 3}


async def _workflow_now(env: WorkflowEnvironment) -> datetime:
    return await env.get_current_time()
