"""A sub-campaign end to end through the Twilio adapter, the local carrier and the webhook
receiver: an AVM voice pass, a retry of the no-answers, and texts to the unreached (issue 15).

The worker's adapter posts to the carrier over HTTP; the carrier plays each call and
message out and calls the receiver back, signed; the receiver stores the statuses and the
waiting attempts settle. Nothing here is the simulator in-process: the ledger is checked
against what the carrier's own world drew for each attempt key, and the carrier's record
of placements shows every attempt placed exactly once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.agents import set_agents
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.carrier import carrier_and_receiver
from csm.vocabulary import Channel
from tests.helpers import campaign_with_list, unique
from worker import build_worker

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "reminder call"
channel = "voice"
template = "Hello $first_name, this is a payment reminder."
[passes.pacing]
concurrency = 20

[[passes]]
name = "retry no answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
template = "Hello again $first_name."
after = "1s"
[passes.pacing]
concurrency = 20

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
[passes.pacing]
concurrency = 20
"""
EXAMPLES = Path(__file__).parents[1] / "examples"
ANY_HOURS = '[hours]\nvoice = "any"\nsms = "any"\nemail = "any"\n'


async def ledger(engine: AsyncEngine, sub_campaign_id: int) -> list[tuple]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT day, pass_number, contact_id, device_id, try_number, channel, result"
                " FROM attempts WHERE sub_campaign_id = :s AND device_id <> 0"
            ),
            {"s": sub_campaign_id},
        )
        return [tuple(row) for row in rows]


async def test_three_passes_through_the_carrier_settle_exactly(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=120)
    await set_policy(engine, ANY_HOURS, campaign=campaign)
    queue = f"provider-e2e-{uuid.uuid4().hex[:8]}"
    async with carrier_and_receiver(settings, engine) as carrier:
        async with build_worker(client, carrier.settings, engine=engine, task_queue=queue):
            launched = await start_sub_campaign(
                client, engine, campaign=campaign, list_name=list_name, task_queue=queue
            )
            summary = await asyncio.wait_for(launched.handle.result(), 180)
        record = carrier.local.carrier.record
        world = carrier.local.carrier.world
    assert summary.state == "completed"
    sub = launched.sub_campaign.id
    rows = await ledger(engine, sub)
    assert {row[5] for row in rows} == {"voice", "sms"}
    assert {row[1] for row in rows} == {1, 2, 3}
    results = [row[6] for row in rows]
    assert "unknown" not in results
    for day, pass_number, contact, device, try_number, channel, result in rows:
        key = f"{sub}-{day:%Y%m%d}-{pass_number}-{contact}-{device}-{try_number}"
        drawn = world.result(key, Channel(channel))
        assert result == drawn, (key, result, drawn)
        if result == "opted_out":  # the carrier refused the POST: nothing placed
            assert (record.placements[key], record.refused[key]) == (0, 1), key
        else:
            assert record.placements[key] == 1, key
    # every placement the carrier took is one ledger row: nothing placed that csm lost
    ours = {key for key in record.placements if key.startswith(f"{sub}-")}
    assert len(ours) == sum(1 for r in results if r != "opted_out")
    async with engine.connect() as connection:
        unsettled = await connection.scalar(
            text(
                "SELECT count(*) FROM provider_attempts"
                " WHERE sub_campaign_id = :s AND attempt_key LIKE :keys AND state <> 'settled'"
            ),
            {"s": sub, "keys": f"{sub}-%"},
        )
    assert unsettled == 0
    assert {"delivered_machine", "no_answer", "success"} <= set(results)


async def test_a_live_answer_of_the_recovery_strategy_is_bridged_to_the_agents(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    """The example recovery strategy through the carrier: a person who answers the AVM pass
    or the dialer and gets an agent is <Dial>ed to the group's SIP address, with no message
    first; one who gets none hears the message (AVM) or is abandoned, and is not bridged."""
    group = unique("agents")
    address = f"sip:{group}@pbx.example.com"
    strategy = (EXAMPLES / "recovery.toml").read_text()
    strategy = strategy.replace('agents = "collections"', f'agents = "{group}"')
    campaign, list_name = unique("recovery"), unique("recovery")
    await create_synthetic_list(engine, list_name, contacts=150, seed=25)
    await create_campaign(engine, campaign, load_strategy(strategy), strategy)
    await set_policy(engine, ANY_HOURS, campaign=campaign)
    # agents busy long enough that some live answers of the AVM pass find none free
    await set_agents(engine, group, 2, talk_seconds=0.5, wrap_seconds=0.1, address=address)
    queue = f"provider-recovery-{uuid.uuid4().hex[:8]}"
    async with carrier_and_receiver(settings, engine) as carrier:
        async with build_worker(client, carrier.settings, engine=engine, task_queue=queue):
            launched = await start_sub_campaign(
                client, engine, campaign=campaign, list_name=list_name, task_queue=queue
            )
            summary = await asyncio.wait_for(launched.handle.result(), 240)
        record = carrier.local.carrier.record
    assert summary.state == "completed"
    sub = launched.sub_campaign.id
    rows = await ledger(engine, sub)
    assert "unknown" not in {row[6] for row in rows}
    results_by_key = {
        f"{sub}-{day:%Y%m%d}-{number}-{contact}-{device}-{try_}": result
        for day, number, contact, device, try_, _, result in rows
    }
    connected = {key for key, result in results_by_key.items() if result == "agent_connected"}
    bridged = {key: to for key, to in record.bridged.items() if key.startswith(f"{sub}-")}
    assert connected and set(bridged) == connected
    assert set(bridged.values()) == {address}
    for key in connected:  # bridged at once: nothing was said before the <Dial>
        (placement,) = record.by_key[key]
        assert placement.actions[0] == f"dial:{address}", placement.actions
    heard = [
        key
        for key, result in results_by_key.items()
        if result == "delivered_person" and key.split("-")[2] == "1"
    ]
    assert heard
    for key in heard:  # the AVM pass found no agent free: the message, not a bridge
        (placement,) = record.by_key[key]
        assert placement.actions[0].startswith("say:"), placement.actions
        assert not any(action.startswith("dial:") for action in placement.actions)
    assert all(count == 1 for key, count in record.placements.items() if key in results_by_key)
