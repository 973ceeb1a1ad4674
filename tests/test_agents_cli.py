"""`csm agents` as a user runs it (subprocesses on the test database), and the simulated
agent desk connecting concurrent calls on the real database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.agents import CallRef, SimulatedAgentDesk, set_agents
from csm.database import driver_connection
from tests.helpers import unique

CSM = [sys.executable, "-m", "csm.cli"]


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


async def seats(engine: AsyncEngine, group: str) -> list[int]:
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT a.seat FROM agents a JOIN agent_groups g ON g.id = a.group_id"
            " WHERE g.name = $1 ORDER BY a.seat",
            group,
        )
    return [row["seat"] for row in rows]


def call(number: int) -> CallRef:
    """A call whose simulated talk and wrap-up times are seeded by its key: the same each run
    (with means of an hour, these keys draw minutes or more, never a few seconds)."""
    return CallRef(
        key=f"test-agents-{number}",
        # no real sub-campaign's id: test_recovery counts agent calls by its sub-campaign,
        # and a fresh database's first sub-campaign is 1
        sub_campaign_id=900_000_003,
        day=date(2026, 11, 25),
        pass_number=1,
        contact_id=number,
    )


async def test_set_creates_resizes_and_updates_times(engine: AsyncEngine, database_url: str):
    group = unique("desk")
    created = await csm(
        "agents", "set", "--group", group, "--count", "5", "--json", database_url=database_url
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {
        "group": group,
        "agents": 5,
        "available": 5,
        "on_call": 0,
        "wrap_up": 0,
        "talk_seconds": 180.0,  # a new group's defaults: 3m talk, 30s wrap-up
        "wrap_seconds": 30.0,
        "address": None,
    }
    assert await seats(engine, group) == [1, 2, 3, 4, 5]

    smaller = await csm(
        "agents", "set", "--group", group, "--count", "2", database_url=database_url
    )
    assert smaller.returncode == 0, smaller.stderr
    assert f"agent group '{group}': 2 agents, mean talk 3m, mean wrap-up 30s" in smaller.stdout
    assert await seats(engine, group) == [1, 2]

    larger = await csm(
        "agents",
        "set",
        "-g",
        group,
        "-n",
        "4",
        "--talk",
        "1m30s",
        "--wrap",
        "0s",
        "--json",
        database_url=database_url,
    )
    assert larger.returncode == 0, larger.stderr
    state = json.loads(larger.stdout)
    assert (state["agents"], state["talk_seconds"], state["wrap_seconds"]) == (4, 90.0, 0.0)
    assert await seats(engine, group) == [1, 2, 3, 4]

    # Times given once stay when only the size changes.
    resized = await csm(
        "agents", "set", "--group", group, "--count", "3", "--json", database_url=database_url
    )
    assert resized.returncode == 0, resized.stderr
    state = json.loads(resized.stdout)
    assert (state["agents"], state["talk_seconds"], state["wrap_seconds"]) == (3, 90.0, 0.0)
    assert await seats(engine, group) == [1, 2, 3]


async def test_show_lists_groups_by_state(engine: AsyncEngine, database_url: str) -> None:
    busy, idle = unique("busy"), unique("idle")
    await set_agents(engine, busy, 3, talk_seconds=3600, wrap_seconds=600)
    await set_agents(engine, idle, 2, talk_seconds=120, wrap_seconds=15)
    desk = SimulatedAgentDesk(engine)
    assert await desk.connect(busy, call(1)) is not None

    shown = await csm("agents", "show", "--json", database_url=database_url)
    assert shown.returncode == 0, shown.stderr
    groups = {g["group"]: g for g in json.loads(shown.stdout)}
    assert groups[busy] == {
        "group": busy,
        "agents": 3,
        "available": 2,
        "on_call": 1,
        "wrap_up": 0,
        "talk_seconds": 3600.0,
        "wrap_seconds": 600.0,
        "address": None,
    }
    assert groups[idle]["agents"] == 2 and groups[idle]["available"] == 2
    assert groups[idle]["on_call"] == 0

    table = await csm("agents", "show", database_url=database_url)
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if busy in line]
    cells = [cell.strip() for cell in row.strip().strip("│").split("│")]
    assert cells == [busy, "3", "2", "1", "0", "1h", "10m"], row


async def test_bad_values_are_one_line_and_exit_1(engine: AsyncEngine, database_url: str):
    group = unique("bad")
    cases = [
        (("--count", "-1"), "csm: error: --count must be between 0 and 10000, got -1\n"),
        (("--count", "10001"), "csm: error: --count must be between 0 and 10000, got 10001\n"),
        (
            ("--count", "2", "--talk", "3 minutes"),
            "csm: error: --talk: expected a duration like '90s', '10m', '1h30m' or '2d',"
            " got '3 minutes'\n",
        ),
        (
            ("--count", "2", "--wrap", "30s1m"),
            "csm: error: --wrap: duration '30s1m': each unit once, largest first (d, h, m, s),"
            " like '1h30m'\n",
        ),
        (("--count", "2", "--talk", "2d"), "csm: error: --talk must be between 0s and 24h\n"),
        (
            ("--count", "2", "--address", "5551234"),
            "csm: error: --address must be a number in E.164 (+15551234567) or a SIP URI"
            " (sip:agents@pbx.example.com), got '5551234'\n",
        ),
    ]
    for args, message in cases:
        result = await csm("agents", "set", "--group", group, *args, database_url=database_url)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr == message
        assert result.stdout == ""
    shown = await csm("agents", "show", "--json", database_url=database_url)
    assert group not in {g["group"] for g in json.loads(shown.stdout)}  # nothing half-made


async def test_a_group_keeps_its_bridge_address_until_another_is_given(
    engine: AsyncEngine, database_url: str
) -> None:
    group = unique("bridge")
    result = await csm(
        "agents",
        "set",
        "--group",
        group,
        "--count",
        "2",
        "--address",
        "sip:desk@pbx.example.com",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert "live answers bridged to sip:desk@pbx.example.com" in result.stdout
    kept = await set_agents(engine, group, 3)  # resized: the address stays
    assert kept.address == "sip:desk@pbx.example.com"
    changed = await set_agents(engine, group, 3, address="+15551234567")
    assert changed.address == "+15551234567"


async def test_concurrent_connects_take_distinct_free_agents(engine: AsyncEngine) -> None:
    group = unique("pair")
    await set_agents(engine, group, 2, talk_seconds=3600, wrap_seconds=3600)
    desk = SimulatedAgentDesk(engine)
    assert await desk.free_agents(group) == 2

    connections = await asyncio.gather(*(desk.connect(group, call(n)) for n in range(3)))
    taken = [c for c in connections if c is not None]
    assert len(taken) == 2
    assert len({c.agent_id for c in taken}) == 2
    assert all(c.talk_until <= c.busy_until for c in taken)
    assert await desk.free_agents(group) == 0
    assert await desk.connect(group, call(4)) is None
    async with driver_connection(engine) as db:
        calls = await db.fetchval(
            "SELECT count(*) FROM agent_calls c JOIN agent_groups g ON g.id = c.group_id"
            " WHERE g.name = $1",
            group,
        )
    assert calls == 2


async def test_agent_without_talk_or_wrap_time_is_free_at_once(engine: AsyncEngine) -> None:
    group = unique("instant")
    await set_agents(engine, group, 1, talk_seconds=0, wrap_seconds=0)
    desk = SimulatedAgentDesk(engine)
    first = await desk.connect(group, call(10))
    assert first is not None
    assert await desk.free_agents(group) == 1
    second = await desk.connect(group, call(11))
    assert second is not None and second.agent_id == first.agent_id
