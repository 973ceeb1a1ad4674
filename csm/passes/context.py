"""What a pass run carries through the engine: the worker's tools, the input, the clock."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.agents import AgentDesk, HoldQueue, SimulatedAgentDesk
from csm.channels import Channels
from csm.passes.clock import Clock, Zones
from csm.passes.contact import Contact
from csm.passes.input import PassInput


@dataclass(frozen=True, slots=True)
class Tools:
    """The worker's side of every pass: its database engine, channel providers, agents'
    hold queue and time zones. `checks=False` turns the contact policy off; only
    benchmarks do that, to measure what the checks cost."""

    engine: AsyncEngine
    channels: Channels
    checks: bool
    hold_queue: HoldQueue
    zones: Zones

    @classmethod
    def of(
        cls,
        engine: AsyncEngine,
        channels: Channels,
        *,
        checks: bool = True,
        desk: AgentDesk | None = None,
    ) -> Tools:
        hold_queue = HoldQueue(desk or SimulatedAgentDesk(engine))
        return cls(engine, channels, checks, hold_queue, Zones())


@dataclass(frozen=True, slots=True)
class PassRun:
    """One run of a pass (or of one shard of it): its input, its clock, the worker's tools."""

    params: PassInput
    clock: Clock
    tools: Tools

    def window_zone(self, contact: Contact) -> ZoneInfo:
        """The zone whose clock the pass's window is read on, for `contact`."""
        window = self.params.definition.window
        assert window is not None
        if window.zone == "contact":
            return contact.zone
        name = self.params.campaign_timezone if window.zone == "campaign" else window.zone
        return self.tools.zones[name]
