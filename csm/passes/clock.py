"""The pass's clock, its time zones and its pace."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio import activity


class Clock:
    """Now, on the server's clock: the attempt's scheduled time plus the time elapsed since.

    In production that is the wall clock; under the time-skipping test server it is
    the skipped time, so windows and days agree with the workflow's.

    It ticks once a millisecond: a pass asks the time several times per attempt, and
    building a datetime (and a contact's local time) costs more than a fast attempt.
    """

    #: The clock's resolution, in seconds.
    TICK = 0.001

    def __init__(self) -> None:
        try:
            origin = activity.info().current_attempt_scheduled_time
        except RuntimeError:
            origin = None
        self.origin = origin or datetime.now(UTC)
        self.started = time.monotonic()
        self._tick = -1.0
        self._now = self.origin
        self._local: dict[ZoneInfo, datetime] = {}

    def now(self) -> datetime:
        tick = time.monotonic()
        if tick - self._tick >= self.TICK:
            self._tick = tick
            self._now = self.origin + timedelta(seconds=tick - self.started)
            self._local.clear()
        return self._now

    def local(self, zone: ZoneInfo) -> datetime:
        """Now on a zone's clock (the same tick as `now`)."""
        now = self.now()
        local = self._local.get(zone)
        if local is None:
            local = self._local[zone] = now.astimezone(zone)
        return local


class Zones(dict[str, ZoneInfo]):
    """Time zones by name, each built once per worker (`zones[name]`): a ZoneInfo per
    contact costs, and a dict lookup is the cheapest way to ask."""

    def __missing__(self, name: str) -> ZoneInfo:
        zone = self[name] = ZoneInfo(name)
        return zone


class Pacer:
    """At most `per_minute` attempts started per minute (None: unpaced): each takes the next
    free slot, reserved before any await (no burst, no lock). A pass's pacing, and a
    carrier account's calls per second across a worker (`per_second`)."""

    def __init__(self, per_minute: float | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_slot = time.monotonic()

    @classmethod
    def per_second(cls, rate: float) -> Pacer:
        return cls(rate * 60 if rate > 0 else None)

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        while (wait := slot - time.monotonic()) > 0:  # a slow pace still heartbeats
            if activity.in_activity():
                activity.heartbeat()
            await asyncio.sleep(min(wait, 1.0))
