"""When an amendment ends: a manager's `HH:MM` on the campaign's clock, as a UTC instant.

The workflow has no time-zone database (it runs in Temporal's sandbox), so the local
time is resolved on the client (the CLI, a starter script) and travels as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from csm.control.errors import BadRequest

HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def until_instant(text: str, timezone: str, now: datetime | None = None) -> datetime:
    """`HH:MM` today on the campaign's clock, as a UTC instant; a past time is an error."""
    from csm.schedule import local_instant

    match = HHMM.match(text.strip())
    if match is None:
        raise BadRequest(
            f"--until {text!r}: expected HH:MM (24-hour clock, {timezone} time), e.g. 14:00"
        )
    local_now = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    clock = time(int(match.group(1)), int(match.group(2)))
    instant = local_instant(local_now.date(), clock, timezone)
    if instant <= local_now:
        raise BadRequest(
            f"--until {clock:%H:%M} is already past: it is {local_now:%H:%M} in {timezone}, "
            "the campaign's zone (an amendment ends at the latest at the end of the day)"
        )
    return instant
