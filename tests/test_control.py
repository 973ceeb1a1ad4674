"""csm.control on a real dev server: what the CLI, the web page and the scripts call to
start and steer a sub-campaign, and the one translation of what Temporal raises."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm import control
from csm.amendments import Amendment, SkipPass
from csm.settings import Settings
from csm.subcampaigns import register_sub_campaign
from tests.helpers import campaign_with_list, unique
from worker import build_worker

#: Pass 2 waits a minute after pass 1: long enough to steer the sub-campaign meanwhile.
STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "call"
channel = "voice"
[[passes]]
name = "text later"
channel = "sms"
after = "60s"
"""


async def test_steering_a_sub_campaign_and_its_refusals(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=5)
    queue = unique("control")
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await control.start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        ref = launched.sub_campaign
        assert (await control.read_plan(client, ref)).sub_campaign == ref.name

        with pytest.raises(control.Refused) as refused:
            await control.amend(client, ref, Amendment(operations=[SkipPass(target=9)]))
        assert "unknown pass 9" in refused.value.reason
        assert str(refused.value).startswith(f"cannot amend sub-campaign {ref.name!r} ")

        with pytest.raises(control.Refused) as refused:
            await control.change_lifecycle(client, ref, "resume")
        assert refused.value.reason == "the sub-campaign is running, not paused"

        assert await control.change_lifecycle(client, ref, "stop") == "stopped"
        assert (await asyncio.wait_for(launched.handle.result(), 60)).state == "stopped"
        with pytest.raises(control.Refused) as refused:  # the run has closed: no worker asked
            await control.change_lifecycle(client, ref, "resume")
        assert refused.value.reason == "the sub-campaign is stopped (stop is final)"
        assert not refused.value.retryable
        with pytest.raises(control.Refused, match="stop is final"):
            await control.refuse_if_stopped(client, ref.workflow_id)


async def test_a_sub_campaign_temporal_never_ran_is_not_found(
    client: Client, engine: AsyncEngine
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=1)
    ref = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    with pytest.raises(control.NotFound) as missing:
        await control.change_lifecycle(client, ref, "pause")
    assert missing.value.reason.startswith("not found on Temporal at ")
    assert not await control.refuse_if_stopped(client, ref.workflow_id)
