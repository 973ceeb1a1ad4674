"""When each pass of a pass pattern runs: days counted in allowed days, windows in UTC.

Pure functions (zoneinfo, no I/O): the plan activity calls them; tests check them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from csm.strategy.model import PassDefinition

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _allowed(day: date, allowed_days: Sequence[str]) -> bool:
    return WEEKDAY_NAMES[day.weekday()] in allowed_days


def advance(day: date, days_to_wait: int, allowed_days: Sequence[str]) -> date:
    """The first allowed day on or after `day`, then `days_to_wait` allowed days later."""
    while not _allowed(day, allowed_days):
        day += timedelta(days=1)
    for _ in range(days_to_wait):
        day += timedelta(days=1)
        while not _allowed(day, allowed_days):
            day += timedelta(days=1)
    return day


def pass_days(passes: Sequence[PassDefinition], start_day: date) -> list[date]:
    """The campaign day of each pass: each waits its `days_to_wait` after the previous one."""
    days: list[date] = []
    previous = start_day
    for definition in passes:
        previous = advance(previous, definition.days_to_wait, definition.allowed_days)
        days.append(previous)
    return days


def local_instant(day: date, clock: time, zone: str) -> datetime:
    """The UTC instant of `clock` on `day` in `zone`."""
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants a campaign day starts and ends (midnight to midnight, local)."""
    return local_instant(day, time(0), zone), local_instant(day + timedelta(days=1), time(0), zone)


def utc_offsets(day: date, zones: Iterable[str]) -> dict[str, int]:
    """Each zone's UTC offset in minutes at local noon of `day` (DST shifts happen at night)."""
    offsets = {}
    for zone in zones:
        noon = datetime.combine(day, time(12), tzinfo=ZoneInfo(zone))
        offset = noon.utcoffset()
        assert offset is not None
        offsets[zone] = int(offset.total_seconds() // 60)
    return offsets


def campaign_day(instant: datetime, zone: str) -> date:
    return instant.astimezone(ZoneInfo(zone)).date()
