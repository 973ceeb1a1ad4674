"""Campaign priority decides who gets a worker's capacity first (issue 16).

A worker that runs one activity at a time is busy with a pass. Meanwhile a sub-campaign
of a low-priority campaign starts, then one of a high-priority campaign: both wait in
the task queue's backlog. Served in arrival order, the low one would run first; served
by the Temporal task priority each sub-campaign started with, the high one runs all of
its pass before the low one makes its first attempt.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from csm.campaigns import create_campaign
from csm.control import start_sub_campaign
from csm.control.start import task_priority
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from tests.helpers import unique, wait_for_plan
from worker import build_worker

STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "call"
channel = "voice"
pacing = { concurrency = 2 }
"""


@pytest.mark.parametrize(
    ("campaign", "key"), [(0, 3), (1, 2), (9, 2), (10, 1), (500, 1), (-1, 4), (-10, 5)]
)
def test_campaign_priorities_map_to_task_priority_keys(campaign: int, key: int) -> None:
    assert task_priority(campaign) == key


async def pass_span(handle: WorkflowHandle) -> tuple[datetime, datetime]:
    """When the sub-campaign's pass activity started and when it completed (its history)."""
    run_pass, started, completed = None, {}, {}
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "run_pass":
                run_pass = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed[event.activity_task_completed_event_attributes.scheduled_event_id] = at
    return started[run_pass], completed[run_pass]


async def test_a_higher_priority_campaign_gets_the_next_free_slot_first(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    names = {}
    for role, priority in (("busy", 0), ("low", -20), ("high", 20)):
        names[role] = unique(role)
        await create_campaign(
            engine, names[role], load_strategy(STRATEGY), STRATEGY, priority=priority
        )
    # the busy pass lasts some seconds (300 contacts at 40 ms, two lanes): long enough for
    # both others to wait in the backlog whatever the machine's load
    busy_list, list_name = unique("busy"), unique("priority")
    await create_synthetic_list(engine, busy_list, contacts=300, seed=31)
    await create_synthetic_list(engine, list_name, contacts=30, seed=32)
    queue = f"priority-{uuid.uuid4().hex[:8]}"
    one_at_a_time = settings.model_copy(
        update={"max_concurrent_activities": 1, "simulator_latency_ms": 40.0}
    )
    async with build_worker(client, one_at_a_time, engine=engine, task_queue=queue):
        started = {}
        started["busy"] = await start_sub_campaign(
            client, engine, campaign=names["busy"], list_name=busy_list, task_queue=queue
        )
        await wait_for_plan(
            started["busy"].handle,
            lambda plan: plan.passes[0].status.value == "running",
            "the busy campaign's pass running",
        )
        for role in ("low", "high"):  # the low one first: it would be first in arrival order
            started[role] = await start_sub_campaign(
                client, engine, campaign=names[role], list_name=list_name, task_queue=queue
            )
            await asyncio.sleep(0.3)
        summaries = await asyncio.wait_for(
            asyncio.gather(*(one.handle.result() for one in started.values())), 180
        )
    assert [summary.state for summary in summaries] == ["completed"] * 3
    busy, high, low = [await pass_span(started[role].handle) for role in ("busy", "high", "low")]
    assert busy[1] <= high[0]  # one slot: the busy pass ended first
    assert high[1] <= low[0], (high, low)  # the high one's whole pass before the low one's
