"""Agents: the contact centre behind dialer passes and live transfers.

`AgentDesk` is the interface a real ACD link implements: how many agents of a
group are free, and connect a live person to one of them. `SimulatedAgentDesk`
keeps the seats in PostgreSQL, shared by every pass and worker: an agent is
claimed by one `UPDATE … FOR UPDATE SKIP LOCKED`, so no agent takes two calls,
and its state follows from the clock (on a call until `talk_until`, in wrap-up
until `busy_until`, then available), so no process has to move it along. Talk
and wrap-up times are drawn from exponential distributions with the group's
means, seeded by the attempt's key so a run can be repeated.

A person answered while no agent is free waits in the hold queue (first come,
first served within a worker) for at most the pass's `hold`; then the call is
abandoned and the provider plays the safe-harbour message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.errors import CsmError

if TYPE_CHECKING:
    from csm.pooled import Connection

logger = logging.getLogger(__name__)


class AgentError(CsmError):
    """An agent group that does not exist, or a bad size or time."""


@dataclass(frozen=True, slots=True)
class CallRef:
    """Which attempt the call belongs to: ids only."""

    key: str  # the attempt key: seeds the simulated talk and wrap-up times
    sub_campaign_id: int
    day: date
    pass_number: int
    contact_id: int


@dataclass(frozen=True, slots=True)
class AgentConnection:
    agent_id: int
    talk_until: datetime
    busy_until: datetime


class AgentDesk(Protocol):
    """What a pass needs from a contact centre."""

    async def free_agents(self, group: str) -> int: ...

    async def connect(self, group: str, call: CallRef) -> AgentConnection | None:
        """Connect the call to a free agent now, or None if every agent is busy."""
        ...


@dataclass(frozen=True, slots=True)
class _Group:
    id: int | None  # None: no such group yet, so no agents
    talk_seconds: float
    wrap_seconds: float
    read_at: float


#: How long a group's times are reused before they are read again (`csm agents set`).
GROUP_TTL = 30.0
#: A group's bridge address: a number in E.164 or a SIP URI (user@host, optional params).
AGENT_ADDRESS = re.compile(r"\+[1-9]\d{6,14}|sips?:[^\s@<>\"]+@[^\s@<>\"]+")


class SimulatedAgentDesk:
    """Simulated agents whose seats live in PostgreSQL (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, *, seed: int = 1):
        self.engine = engine
        self.seed = seed
        self._groups: dict[str, _Group] = {}

    async def _group(self, connection, name: str) -> _Group:
        """The group's id and mean times; a group nobody created has no agents (its passes
        wait for some, as a dialer waits for agents to log in)."""
        group = self._groups.get(name)
        if group is None or time.monotonic() - group.read_at > GROUP_TTL:
            row = await connection.fetchrow(
                "SELECT id, talk_seconds, wrap_seconds FROM agent_groups WHERE name = $1", name
            )
            if row is None:
                logger.warning(
                    "no agent group %r: its passes wait for agents"
                    " (csm agents set --group %s --count N)",
                    name,
                    name,
                )
                group = _Group(None, 0.0, 0.0, time.monotonic())
            else:
                group = _Group(row[0], row[1], row[2], time.monotonic())
            self._groups[name] = group
        return group

    def _draw(self, key: str, mean: float, salt: str) -> float:
        digest = hashlib.blake2b(f"{self.seed}:{salt}:{key}".encode(), digest_size=8).digest()
        roll = random.Random(int.from_bytes(digest, "big")).random()
        return -mean * math.log(1.0 - roll)

    async def free_agents(self, group: str) -> int:
        async with driver_connection(self.engine) as connection:
            found = await self._group(connection, group)
            if found.id is None:
                return 0
            return await connection.fetchval(
                "SELECT count(*) FROM agents WHERE group_id = $1"
                " AND (busy_until IS NULL OR busy_until <= now())",
                found.id,
            )

    async def connect(self, group: str, call: CallRef) -> AgentConnection | None:
        async with driver_connection(self.engine) as connection:
            found = await self._group(connection, group)
            if found.id is None:
                return None
            talk = self._draw(call.key, found.talk_seconds, "talk")
            wrap = self._draw(call.key, found.wrap_seconds, "wrap")
            row = await connection.fetchrow(
                """
                WITH free AS (
                  SELECT id FROM agents
                  WHERE group_id = $1 AND (busy_until IS NULL OR busy_until <= now())
                  ORDER BY busy_until NULLS FIRST, seat LIMIT 1
                  FOR UPDATE SKIP LOCKED),
                taken AS (
                  UPDATE agents a SET talk_until = now() + $2::interval,
                                      busy_until = now() + $2::interval + $3::interval
                  FROM free WHERE a.id = free.id
                  RETURNING a.id, a.talk_until, a.busy_until)
                INSERT INTO agent_calls (agent_id, group_id, sub_campaign_id, day, pass_number,
                                         contact_id, started_at, talk_until, busy_until)
                SELECT id, $1, $4, $5, $6, $7, now(), talk_until, busy_until FROM taken
                RETURNING agent_id, talk_until, busy_until
                """,
                found.id,
                timedelta(seconds=talk),
                timedelta(seconds=wrap),
                call.sub_campaign_id,
                call.day,
                call.pass_number,
                call.contact_id,
            )
        return AgentConnection(*row) if row else None


class HoldQueue:
    """People waiting for an agent, first come first served (within this worker)."""

    def __init__(self, desk: AgentDesk):
        self.desk = desk
        self._queues: dict[str, asyncio.Lock] = {}

    async def connect(
        self, group: str, call: CallRef, hold: float, heartbeat: Callable[[], None]
    ) -> AgentConnection | None:
        """An agent within `hold` seconds (0: only one free right now), else None."""
        if hold <= 0:
            return await self.desk.connect(group, call)
        deadline = time.monotonic() + hold
        queue = self._queues.setdefault(group, asyncio.Lock())
        try:
            await asyncio.wait_for(queue.acquire(), timeout=hold)
        except TimeoutError:
            return None
        try:
            while True:
                agent = await self.desk.connect(group, call)
                left = deadline - time.monotonic()
                if agent is not None or left <= 0:
                    return agent
                heartbeat()
                await asyncio.sleep(min(0.05, left))
        finally:
            queue.release()


# ---- managing groups (CLI) ---------------------------------------------------


async def groups_without_agents(engine: AsyncEngine, names: set[str]) -> list[str]:
    """Which of these groups have no agents (or do not exist): their passes would wait."""
    if not names:
        return []
    async with driver_connection(engine) as connection:
        staffed = {
            row[0]
            for row in await connection.fetch(
                "SELECT g.name FROM agent_groups g JOIN agents a ON a.group_id = g.id"
                " WHERE g.name = ANY($1::text[]) GROUP BY g.name",
                sorted(names),
            )
        }
    return sorted(names - staffed)


@dataclass(frozen=True)
class GroupState:
    name: str
    agents: int
    available: int
    on_call: int
    wrap_up: int
    talk_seconds: float
    wrap_seconds: float
    address: str | None = None  # where a carrier bridges its live answers (number or SIP)

    def as_json(self) -> dict[str, object]:
        return {
            "group": self.name,
            "agents": self.agents,
            "available": self.available,
            "on_call": self.on_call,
            "wrap_up": self.wrap_up,
            "talk_seconds": self.talk_seconds,
            "wrap_seconds": self.wrap_seconds,
            "address": self.address,
        }


async def set_agents(
    engine: AsyncEngine,
    group: str,
    count: int,
    *,
    talk_seconds: float | None = None,
    wrap_seconds: float | None = None,
    address: str | None = None,
) -> GroupState:
    """Create the group or resize it to `count` seats (busy seats beyond it finish first:
    they are removed now, their calls stay in the history). Times are means in seconds.
    `address` (a number in E.164 or a `sip:` URI) is where a carrier bridges the group's
    live answers; None keeps the one it has."""
    if not group.strip() or len(group) > 64:
        raise AgentError("a group name is 1-64 characters")
    if count < 0 or count > 10_000:
        raise AgentError(f"--count must be between 0 and 10000, got {count}")
    for label, value in (("--talk", talk_seconds), ("--wrap", wrap_seconds)):
        if value is not None and not 0 <= value <= 86_400:
            raise AgentError(f"{label} must be between 0s and 24h")
    if address is not None and not AGENT_ADDRESS.fullmatch(address):
        raise AgentError(
            f"--address must be a number in E.164 (+15551234567) or a SIP URI"
            f" (sip:agents@pbx.example.com), got {address!r}"
        )
    async with driver_connection(engine) as connection, connection.transaction():
        group_id = await connection.fetchval(
            """
            INSERT INTO agent_groups (name, talk_seconds, wrap_seconds, address)
            VALUES ($1, coalesce($2::float8, 180), coalesce($3::float8, 30), $4)
            ON CONFLICT (name) DO UPDATE SET
              talk_seconds = coalesce($2::float8, agent_groups.talk_seconds),
              wrap_seconds = coalesce($3::float8, agent_groups.wrap_seconds),
              address = coalesce($4, agent_groups.address)
            RETURNING id
            """,
            group,
            talk_seconds,
            wrap_seconds,
            address,
        )
        await connection.execute(
            "DELETE FROM agents WHERE group_id = $1 AND seat > $2", group_id, count
        )
        await connection.execute(
            "INSERT INTO agents (group_id, seat) SELECT $1, s FROM generate_series(1, $2) s"
            " ON CONFLICT DO NOTHING",
            group_id,
            count,
        )
    return next(state for state in await agent_groups(engine) if state.name == group)


async def agent_groups(engine: AsyncEngine) -> list[GroupState]:
    """Every group with its agents by state, now."""
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            """
            SELECT g.name, g.talk_seconds, g.wrap_seconds, g.address, count(a.id) AS agents,
              count(a.id) FILTER (WHERE a.busy_until IS NULL OR a.busy_until <= now()) AS free,
              count(a.id) FILTER (WHERE a.talk_until > now()) AS on_call
            FROM agent_groups g LEFT JOIN agents a ON a.group_id = g.id
            GROUP BY g.id ORDER BY g.name
            """
        )
    return [
        GroupState(
            name=row["name"],
            agents=row["agents"],
            available=row["free"],
            on_call=row["on_call"],
            wrap_up=row["agents"] - row["free"] - row["on_call"],
            talk_seconds=row["talk_seconds"],
            wrap_seconds=row["wrap_seconds"],
            address=row["address"],
        )
        for row in rows
    ]


async def group_address(connection: Connection, group: str) -> str | None:
    """Where a carrier bridges the group's live answers (a number or a SIP address), if
    the group has one (agent_groups.address); the provider's default otherwise."""
    return await connection.fetchval("SELECT address FROM agent_groups WHERE name = $1", group)
