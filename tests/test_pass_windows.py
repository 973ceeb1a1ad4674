"""A pass whose contacts' windows open later waits for them (heartbeating) and stops on pause."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities, PassInput
from csm.channels import Channels
from csm.passes.clock import Clock
from csm.passes.contact import Contact
from csm.passes.context import PassRun
from csm.passes.windows import window_open
from csm.strategy.model import PassDefinition, Window
from tests.test_subcampaign_days import midday_zone


def _setup(opens_in: float) -> tuple[PassActivities, Contact, PassInput]:
    zone = midday_zone()
    local_now = Clock().now().astimezone(ZoneInfo(zone))
    start = (local_now + timedelta(seconds=opens_in)).time().replace(microsecond=0)
    definition = PassDefinition(
        name="later",
        channel="voice",
        window=Window(start=start, end=(local_now + timedelta(hours=1)).time(), zone="contact"),
    )
    params = PassInput(
        sub_campaign_id=1,
        campaign_id=1,
        list_id=1,
        day=date.today(),
        pass_number=1,
        definition=definition,
        response_groups={},
        campaign_timezone=zone,
    )
    contact = Contact(seq=1, contact_id=1, zone=ZoneInfo(zone), consented=True, devices=[])
    return PassActivities(engine=None, channels=Channels()), contact, params  # type: ignore[arg-type]


async def test_waits_until_the_window_opens() -> None:
    activities, contact, params = _setup(opens_in=2.0)
    heartbeats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = heartbeats.append
    assert Clock().now().astimezone(contact.zone).time() < params.definition.window.start
    run = PassRun(params, Clock(), activities.tools)
    opened = await env.run(window_open, run, contact, asyncio.Event(), 0)
    assert opened
    assert Clock().now().astimezone(contact.zone).time() >= params.definition.window.start
    assert heartbeats  # it stayed alive while it waited


async def test_stopping_ends_the_wait() -> None:
    activities, contact, params = _setup(opens_in=600)
    stopping = asyncio.Event()
    env = ActivityEnvironment()
    asyncio.get_running_loop().call_later(0.3, stopping.set)
    run = PassRun(params, Clock(), activities.tools)
    opened = await env.run(window_open, run, contact, stopping, 0)
    assert not opened
