"""A pass that waits says why, and until when (issue 13, item 2), on a real dev server.

Waiting for the contacts' calling hours (inside the pass activity), for a pass window,
for an `after` delay and while paused (in the workflow): each sets the pass's note that
`csm status --json` shows (through `live_status`, the function it uses) and the Temporal
UI's current details, and the note goes away when the pass works again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from csm import dialer
from csm.agents import set_agents
from csm.compliance.store import set_policy
from csm.control import Launched, start_sub_campaign
from csm.plan import PassStatus
from csm.results import live_status
from csm.settings import Settings
from tests.helpers import campaign_with_list, unique, wait_for_plan
from tests.test_subcampaign_control import slow_channels
from tests.test_subcampaign_days import midday_zone
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow


def _in_an_hour(zone: str) -> str:
    later = datetime.now(UTC).astimezone(ZoneInfo(zone)) + timedelta(hours=1)
    return f"{later:%H:%M}"


async def _details(handle: WorkflowHandle) -> str:
    """The Temporal UI's current details of the workflow (its metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata")
    return metadata.current_details


@contextlib.asynccontextmanager
async def _running(
    client: Client, engine: AsyncEngine, settings: Settings, strategy: str, policy: str = ""
) -> AsyncIterator[Launched]:
    """A sub-campaign of five contacts launched on a worker of its own; stopped after."""
    campaign, list_name = await campaign_with_list(engine, strategy, contacts=5)
    if policy:
        await set_policy(engine, policy, campaign=campaign)
    queue = f"notes-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, settings, engine=engine, channels=slow_channels(0.0), task_queue=queue
    ):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        try:
            yield launched
        finally:
            with contextlib.suppress(RPCError):
                await launched.handle.signal(SubCampaignWorkflow.stop)
            await launched.handle.result()


async def test_a_pass_waiting_for_calling_hours_says_so(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    zone = midday_zone()
    strategy = f'timezone = "{zone}"\n\n[[passes]]\nname = "call"\nchannel = "voice"\n'
    # Calling hours are on each contact's clock: start them an hour from now where the
    # synthetic contacts' day is furthest on (New York), so every contact waits. (From the
    # campaign's midday zone they opened early for New York whenever it lay west of it.)
    policy = f'[hours]\nvoice = "{_in_an_hour("America/New_York")}-23:59"\n'
    async with _running(client, engine, settings, strategy, policy) as launched:
        handle = launched.handle
        plan = await wait_for_plan(
            handle, lambda p: "calling hours" in p.passes[0].note, "the calling-hours note"
        )
        assert plan.passes[0].status is PassStatus.RUNNING
        shown = (await live_status(handle, engine, launched.sub_campaign)).as_json()
        first = shown["passes"][0]
        assert (first["status"], first["attempted"]) == ("running", 0)
        assert "waiting for calling hours: 5 contacts left" in first["note"]
        assert "calling hours" in await _details(handle)


async def test_a_pass_waiting_for_its_window_says_so(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    zone = midday_zone()
    strategy = f"""
timezone = "{zone}"

[[passes]]
name = "later"
channel = "voice"
window = {{ start = "{_in_an_hour("America/New_York")}", end = "23:59" }}
"""  # on each contact's clock, like the calling hours above
    async with _running(client, engine, settings, strategy) as launched:
        plan = await wait_for_plan(
            launched.handle, lambda p: p.passes[0].status is PassStatus.WAITING, "waiting"
        )
        assert plan.passes[0].note.startswith("waiting for its window: starts at ")
        assert "waiting for its window" in await _details(launched.handle)


async def test_after_and_pause_each_set_a_note(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    strategy = f"""
timezone = "{midday_zone()}"

[[passes]]
name = "first"
channel = "voice"

[[passes]]
name = "second"
channel = "voice"
after = "1h"
"""
    async with _running(client, engine, settings, strategy) as launched:
        handle = launched.handle
        plan = await wait_for_plan(
            handle, lambda p: p.passes[1].status is PassStatus.WAITING, "pass 2 waiting"
        )
        assert plan.passes[0].note == ""  # it ran: nothing to explain
        assert plan.passes[1].note.startswith("waiting for its `after` delay: starts at ")
        await handle.signal(SubCampaignWorkflow.pause)
        await wait_for_plan(
            handle, lambda p: p.passes[1].note.startswith("paused since "), "the paused note"
        )
        shown = (await live_status(handle, engine, launched.sub_campaign)).as_json()
        assert shown["passes"][1]["note"].startswith("paused since ")
        await handle.signal(SubCampaignWorkflow.resume)
        await wait_for_plan(
            handle, lambda p: p.passes[1].note.startswith("waiting for its `after`"), "resumed"
        )


async def test_a_dialer_pass_without_free_agents_says_so(
    client: Client, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody logged in: the pass waits for one and says so; once agents come, the note
    goes and the calls start."""
    monkeypatch.setattr(dialer, "AGENTS_NOTE_AFTER", 0.3)  # the pass's short waits stay silent
    group = unique("nobody")
    await set_agents(engine, group, 0)  # the group, with nobody logged in yet
    strategy = f"""
timezone = "{midday_zone()}"

[[passes]]
name = "agents"
channel = "dialer"
agents = "{group}"
pacing = {{ mode = "progressive", hold = "1s", concurrency = 5 }}
"""
    async with _running(client, engine, settings, strategy) as launched:
        handle = launched.handle
        plan = await wait_for_plan(
            handle, lambda p: p.passes[0].note.startswith("waiting for agents"), "agents note"
        )
        assert f"no agent of group {group} free" in plan.passes[0].note
        await set_agents(engine, group, 3, talk_seconds=0.05, wrap_seconds=0.0)
        await wait_for_plan(
            handle,
            lambda p: not p.passes[0].note.startswith("waiting for agents"),
            "the agents note to clear",
        )
