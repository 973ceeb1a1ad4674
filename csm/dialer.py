"""Calls that reach people: pacing a dialer pass by its agents, and live answers.

A `dialer` pass dials only as many lines as its agents can take:
- progressive: one ringing line per free agent;
- predictive: as many more lines as the campaign's abandon budget allows. The
  budget is `abandon_limit × live answers − abandoned calls` over the last 30
  days (the US telemarketing rule's measure), this pass included. Even if every
  extra line were answered with no agent left, the rate would stay within the
  limit; as abandons use the budget up, the pace falls back to progressive.
A live answer on a dialer pass waits in the hold queue for an agent (`hold`,
default 2 s) and is `abandoned` after it; on a `voice` (AVM) pass with an agent
group it is connected at once to a free agent, and when none is free the
message plays (`delivered_person`) and the contact stays eligible for a dialer
pass.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from csm.agents import AgentDesk, CallRef, HoldQueue
from csm.vocabulary import Channel

if TYPE_CHECKING:
    from csm.pooled import Connection

LIVE = "delivered_person"  # what the carrier reports when a person answers
CONNECTED = "agent_connected"
ABANDONED = "abandoned"
ABANDON_WINDOW_DAYS = 30
#: How long a free-agent count is reused before asking the desk again.
FREE_AGENTS_TTL = 0.05
#: A dialer pass that got no line for this long says it waits for agents (its note), until
#: lines come this quickly again.
AGENTS_NOTE_AFTER = 30.0


async def abandon_history(connection: Connection, campaign_id: int) -> tuple[int, int]:
    """(live answers, abandoned) of the campaign over the last 30 days."""
    row = await connection.fetchrow(
        """
        SELECT count(*) AS live, count(*) FILTER (WHERE result = 'abandoned') AS abandoned
        FROM attempts WHERE campaign_id = $1 AND result IN ('abandoned', 'agent_connected')
          AND attempted_at > now() - make_interval(days => $2)
        """,
        campaign_id,
        ABANDON_WINDOW_DAYS,
    )
    return row["live"], row["abandoned"]


@dataclass
class DialerLines:
    """How many calls the pass may have ringing; see the module docstring."""

    desk: AgentDesk
    group: str
    predictive: bool
    abandon_limit: float
    live: int  # live answers over the window, this pass's included
    abandoned: int
    heartbeat: Callable[[], None]
    #: Told why the pass waits when no agent freed a line for AGENTS_NOTE_AFTER, and ""
    #: when one does: the pass's note (counts and times only).
    note: Callable[[str], None] | None = None
    ringing: int = 0
    _free: int = 0
    _free_read: float = field(default=-math.inf)
    _line_at: float = field(default_factory=time.monotonic)  # when a line was last taken
    _stalled: bool = False  # the note says the pass waits for agents

    def budget(self) -> int:
        """Extra lines the abandon limit still allows (0 in progressive mode)."""
        if not self.predictive:
            return 0
        return max(0, math.floor(self.abandon_limit * self.live - self.abandoned))

    async def _free_agents(self) -> int:
        if time.monotonic() - self._free_read > FREE_AGENTS_TTL:
            self._free = await self.desk.free_agents(self.group)
            self._free_read = time.monotonic()
        return self._free

    async def acquire(self, stopping: asyncio.Event | None = None) -> bool:
        """Wait for a line: fewer ringing than free agents plus the budget. False if
        `stopping` was set first (no line taken)."""
        while True:
            free = await self._free_agents()
            if self.ringing < free + self.budget():  # no await between check and count
                self.ringing += 1
                self._lined()
                return True
            if stopping is not None and stopping.is_set():
                return False
            self._note_stall()
            self.heartbeat()
            await asyncio.sleep(FREE_AGENTS_TTL)

    def _lined(self) -> None:
        """A line was taken: once lines come quickly again (two within AGENTS_NOTE_AFTER),
        the note goes. A pass whose few agents free up only now and then keeps its note
        rather than setting and clearing it at every call."""
        now = time.monotonic()
        flowing = now - self._line_at < AGENTS_NOTE_AFTER
        self._line_at = now
        if self._stalled and flowing and self.note is not None:
            self._stalled = False
            self.note("")

    def _note_stall(self) -> None:
        """Say the pass waits for agents once no line was free for AGENTS_NOTE_AFTER: the
        pacing's short waits for an agent stay silent."""
        waited = time.monotonic() - self._line_at
        if self.note is None or self._stalled or waited < AGENTS_NOTE_AFTER:
            return
        self._stalled = True
        since = datetime.now(UTC) - timedelta(seconds=waited)
        self.note(
            f"waiting for agents: no agent of group {self.group} free for a call"
            f" since {since:%H:%M} UTC ({self.ringing} calls ringing)"
        )

    def release(self, result: str) -> None:
        self.ringing -= 1
        if result in (CONNECTED, ABANDONED):
            self.live += 1
            self.abandoned += result == ABANDONED
            self._free_read = -math.inf  # an agent was taken, or may be


@dataclass
class LiveAnswers:
    """What a live answer becomes on this pass: an agent, abandoned, or the message."""

    queue: HoldQueue
    group: str
    channel: Channel
    hold_seconds: float
    heartbeat: Callable[[], None]

    async def answered(self, call: CallRef) -> str:
        if self.channel is Channel.DIALER:
            agent = await self.queue.connect(self.group, call, self.hold_seconds, self.heartbeat)
            return CONNECTED if agent else ABANDONED
        agent = await self.queue.connect(self.group, call, 0, self.heartbeat)  # at once, or not
        return CONNECTED if agent else LIVE
