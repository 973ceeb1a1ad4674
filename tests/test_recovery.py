"""Agents, dialer passes and the recovery strategy, on the seeded simulator and real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities
from csm.agents import set_agents
from csm.campaigns import create_campaign
from csm.channels import Channels
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.control import start_sub_campaign
from csm.passes.decision import NEXT_DEVICE
from csm.results import agent_utilisation
from csm.schedule import campaign_day
from csm.settings import Settings
from csm.strategy import load_strategy, load_strategy_file
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from csm.vocabulary import Channel
from tests.compliance_helpers import WatchingCarrier, pass_input, rows_of, run_pass
from tests.helpers import unique
from worker import build_worker

EXAMPLES = Path(__file__).parents[1] / "examples"


def ringing(latency: float = 0.01) -> Channels:
    """The seeded simulator with calls that take a little while, as real ones do."""
    carrier = SimulatedCarrier(SimulatorConfig(seed=3, latency_seconds=latency))
    return Channels({Channel.VOICE: carrier, Channel.DIALER: carrier})


def dialer_strategy(group: str, mode: str = "predictive") -> str:
    return f"""
timezone = "America/New_York"

[[passes]]
name = "agents"
channel = "dialer"
agents = "{group}"
pacing = {{ mode = "{mode}", abandon_limit = 0.03, hold = "1s", concurrency = 20 }}
"""


async def test_the_abandon_rate_stays_under_the_limit_at_several_agent_counts(
    engine: AsyncEngine,
) -> None:
    list_name = unique("dial")
    await create_synthetic_list(engine, list_name, contacts=150, seed=21)
    figures = []
    for agents in (1, 3, 8):
        group, campaign = unique("agents"), unique("dialer")
        await set_agents(engine, group, agents, talk_seconds=0.4, wrap_seconds=0.1)
        text = dialer_strategy(group)
        strategy = load_strategy(text)
        await create_campaign(engine, campaign, strategy, text)
        sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
        counts = await run_pass(engine, ringing(), sub, strategy, 1)
        connected = counts.results.get("agent_connected", 0)
        abandoned = counts.results.get("abandoned", 0)
        day = campaign_day(datetime.now(UTC), strategy.timezone)  # as run_pass ran it
        utilisation = await agent_utilisation(engine, sub.id, day, 1, group)
        ((seconds,),) = await rows_of(
            engine,
            "SELECT extract(epoch FROM max(attempted_at) - min(attempted_at)) FROM attempts"
            " WHERE sub_campaign_id = :s",
            s=sub.id,
        )
        figures.append((agents, connected, abandoned, utilisation, float(seconds)))
        assert connected > 0
        assert abandoned <= 0.03 * (connected + abandoned), figures[-1]
        assert counts.results.get("delivered_person", 0) == 0  # every live answer: agent or not
        assert utilisation is not None and 0 < utilisation <= 1
        # Every agent of the group took calls, and no one else's agents did.
        ((used, outside),) = await rows_of(
            engine,
            "SELECT count(DISTINCT c.agent_id), count(*) FILTER (WHERE g.name <> :g)"
            " FROM agent_calls c JOIN agent_groups g ON g.id = c.group_id"
            " WHERE c.sub_campaign_id = :s",
            s=sub.id,
            g=group,
        )
        assert (used, outside) == (min(agents, connected), 0)
    # Durations are for reading (bench/dialer_agents.py measures them), not asserted.
    print("agents, connected, abandoned, utilisation, seconds:", figures)


FAILOVER = """
timezone = "America/New_York"

[[passes]]
name = "call"
channel = "voice"
devices = ["landline", "wireless"]
"""


async def test_failover_tries_devices_in_order_and_stops_at_the_first_connection(
    engine: AsyncEngine,
) -> None:
    list_name, campaign = unique("failover"), unique("failover")
    await create_synthetic_list(engine, list_name, contacts=300, seed=22)
    strategy = load_strategy(FAILOVER)
    await create_campaign(engine, campaign, strategy, FAILOVER)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    await run_pass(engine, ringing(0), sub, strategy, 1)
    rows = await rows_of(
        engine,
        "SELECT a.contact_id, d.kind, d.position, a.result FROM attempts a"
        " JOIN devices d ON d.id = a.device_id WHERE a.sub_campaign_id = :s ORDER BY a.id",
        s=sub.id,
    )
    per_contact: dict[int, list[tuple[str, int, str]]] = {}
    for contact_id, kind, position, result in rows:
        per_contact.setdefault(contact_id, []).append((kind, position, result))
    order = {"landline": 0, "wireless": 1}
    failed_over = 0
    for tried in per_contact.values():
        assert [(order[k], p) for k, p, _ in tried] == sorted((order[k], p) for k, p, _ in tried)
        assert all(result in NEXT_DEVICE for _, _, result in tried[:-1])  # moved on only then
        failed_over += len(tried) > 1
    assert failed_over > 20
    connected_first = sum(tried[0][2] not in NEXT_DEVICE for tried in per_contact.values())
    assert connected_first > 20  # ...and stopped at the first connection


async def test_a_live_person_in_the_avm_pass_reaches_a_free_agent(engine: AsyncEngine) -> None:
    """The same list, the same seeded answers: with agents free every live answer is
    connected; with none, the message plays to the same people."""
    list_name = unique("avm")
    await create_synthetic_list(engine, list_name, contacts=200, seed=23)
    outcomes = {}
    for agents in (0, 200):
        group, campaign = unique("avm-agents"), unique("avm")
        await set_agents(engine, group, agents, talk_seconds=30, wrap_seconds=5)
        text = f"""
timezone = "America/New_York"
[[passes]]
name = "avm"
channel = "voice"
agents = "{group}"
"""
        strategy = load_strategy(text)
        await create_campaign(engine, campaign, strategy, text)
        sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
        counts = await run_pass(engine, ringing(0), sub, strategy, 1)
        outcomes[agents] = counts.results
    assert outcomes[0].get("agent_connected", 0) == 0
    assert outcomes[0]["delivered_person"] > 20
    assert outcomes[200]["agent_connected"] == outcomes[0]["delivered_person"]
    assert outcomes[200].get("delivered_person", 0) == 0


SIDE_BY_SIDE = """
timezone = "America/New_York"

[[passes]]
name = "avm"
channel = "voice"
agents = "{group}"
pacing = {{ concurrency = 5 }}

[[passes]]
name = "dialer"
channel = "dialer"
agents = "{group}"
alongside = true
pacing = {{ mode = "predictive", concurrency = 5 }}
"""


async def test_two_passes_side_by_side_never_connect_one_contact_twice(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    list_name, campaign, group = unique("side"), unique("side"), unique("side-agents")
    await create_synthetic_list(engine, list_name, contacts=300, seed=24)
    await set_agents(engine, group, 6, talk_seconds=0.05, wrap_seconds=0.01)
    text = SIDE_BY_SIDE.format(group=group)
    await create_campaign(engine, campaign, load_strategy(text), text)
    carrier = WatchingCarrier(latency_seconds=0.005)
    channels = Channels({Channel.VOICE: carrier, Channel.DIALER: carrier})
    task_queue = f"side-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, settings, engine=engine, channels=channels, task_queue=task_queue
    ):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 180)
    assert summary.state == "completed"
    sub_id = launched.sub_campaign.id
    spans = dict(
        (number, (began, ended))
        for number, began, ended in await rows_of(
            engine,
            "SELECT pass_number, min(attempted_at), max(attempted_at) FROM attempts"
            " WHERE sub_campaign_id = :s GROUP BY pass_number",
            s=sub_id,
        )
    )
    assert spans[2][0] < spans[1][1] and spans[1][0] < spans[2][1]  # they ran at the same time
    connected = Counter(
        contact
        for (contact,) in await rows_of(
            engine,
            "SELECT contact_id FROM attempts WHERE sub_campaign_id = :s"
            " AND result = 'agent_connected'",
            s=sub_id,
        )
    )
    assert connected and max(connected.values()) == 1
    assert carrier.overlaps == []


async def test_the_example_recovery_strategy_runs_end_to_end(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    definition, text = load_strategy_file(EXAMPLES / "recovery.toml")
    list_name, campaign = unique("recovery"), unique("recovery")
    await create_synthetic_list(engine, list_name, contacts=300, seed=25)
    await set_agents(engine, "collections", 4, talk_seconds=0.05, wrap_seconds=0.02)
    await create_campaign(engine, campaign, definition, text)
    task_queue = f"recovery-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, settings, engine=engine, channels=ringing(0.005), task_queue=task_queue
    ):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 240)
    assert summary.state == "completed"
    per_pass = {
        number: dict(results)
        for number, results in _by_pass(
            await rows_of(
                engine,
                "SELECT pass_number, result, count(*) FROM attempts WHERE sub_campaign_id = :s"
                " GROUP BY pass_number, result",
                s=launched.sub_campaign.id,
            )
        ).items()
    }
    assert per_pass[1].get("agent_connected", 0) > 0  # live transfers from the AVM pass
    assert per_pass[2].get("agent_connected", 0) > 0  # the dialer beside it
    live = per_pass[2].get("agent_connected", 0) + per_pass[2].get("abandoned", 0)
    assert per_pass[2].get("abandoned", 0) <= 0.03 * live
    recovered = await rows_of(
        engine,
        "SELECT count(*) FROM pass_selections WHERE sub_campaign_id = :s AND pass_number = 3",
        s=launched.sub_campaign.id,
    )
    left = per_pass[1].get("delivered_person", 0) + sum(
        per_pass[n].get("abandoned", 0) for n in (1, 2)
    )
    assert recovered[0][0] >= min(left, 1)  # the recovery pass took what the first two left


def _by_pass(rows: list[tuple]) -> dict[int, list[tuple[str, int]]]:
    grouped: dict[int, list[tuple[str, int]]] = {}
    for number, result, count in rows:
        grouped.setdefault(number, []).append((result, count))
    return grouped


async def test_a_pause_ends_the_wait_for_agents_without_losing_a_contact(
    engine: AsyncEngine,
) -> None:
    """No agent is free: the dialer pass waits for one, and a pause (the activity's
    cancellation) ends the wait at once; the contacts stay for the resumed pass."""
    list_name, campaign, group = unique("wait"), unique("wait"), unique("nobody")
    await create_synthetic_list(engine, list_name, contacts=40, seed=26)
    await set_agents(engine, group, 0)
    text = dialer_strategy(group, mode="progressive")
    strategy = load_strategy(text)
    await create_campaign(engine, campaign, strategy, text)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    env = ActivityEnvironment()
    now = datetime.now(UTC)
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=now)
    activities = PassActivities(engine, ringing())
    running = asyncio.ensure_future(
        env.run(activities.run_pass, pass_input(sub, strategy, 1, at=now))
    )
    await asyncio.sleep(1.0)
    assert not running.done()  # waiting for an agent
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    recorded = await rows_of(
        engine,
        "SELECT result, skip_reason, count(*) FROM attempts WHERE sub_campaign_id = :s"
        " GROUP BY 1, 2",
        s=sub.id,
    )
    # Nobody was called; only contacts that needed no line (no consent) were settled.
    assert all((result, reason) == ("skipped", "no_consent") for result, reason, _ in recorded)
    settled = sum(count for _, _, count in recorded)
    assert settled < 40  # the rest stay for the resumed pass
