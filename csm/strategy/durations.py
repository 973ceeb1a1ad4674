"""Durations as people write them in strategy files: "90s", "10m", "1h30m", "2d".

A strategy file is read and edited by campaign managers, so delays and gaps
are short unit strings rather than seconds or ISO 8601 ("PT1H30M"). The same
text is what the model dumps to JSON, so a stored or sent strategy reads the
way it was written.

Durations are bounded by MAX_DURATION (400 days): every key that takes one
(a pass's `after`, `retries.gap` and `pacing.hold`, a cap's rolling period,
an agent group's talk and wrap-up times) means at most about a year, and an
unbounded one would overflow `timedelta` (or the calendar) with a raw error.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: Units in the order they must appear, largest first.
UNITS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"(?:\d+[dhms])+")

EXAMPLES = "'90s', '10m', '1h30m' or '2d'"

#: The longest duration a strategy (or any csm option) may name: a year and then some.
MAX_DURATION = timedelta(days=400)
_MAX_SECONDS = int(MAX_DURATION.total_seconds())


class DurationError(ValueError):
    """Text that is not a duration; the message says what a duration looks like."""


def _shown(text: object) -> str:
    """`text` quoted for a message, shortened when a slip made it very long."""
    shown = repr(text)
    return shown if len(shown) <= 40 else f"{shown[:30]}...{shown[-8:]}"


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m" style text: whole numbers with units d, h, m, s, largest unit first.

    Each unit at most once, so a typo like "1h1h" is an error instead of two hours.
    At most MAX_DURATION ("400d"), so a slip like "99999999999d" is a clear error.
    """
    if not isinstance(text, str):
        raise DurationError(f"expected a duration like {EXAMPLES}, got {_shown(text)}")
    compact = text.strip().lower()
    if not compact or not _WHOLE.fullmatch(compact):
        raise DurationError(f"expected a duration like {EXAMPLES}, got {_shown(text)}")
    seconds = 0
    previous_rank = -1
    for amount, unit in _PART.findall(compact):
        rank = list(UNITS).index(unit)
        if rank <= previous_rank:
            raise DurationError(
                f"duration {_shown(text)}: each unit once, largest first (d, h, m, s), like '1h30m'"
            )
        previous_rank = rank
        # More significant digits than the bound has seconds is too long in any unit
        # (and int() refuses thousands of digits with an error of its own).
        if len(amount.lstrip("0")) > len(str(_MAX_SECONDS)):
            raise _too_long(text)
        seconds += int(amount) * UNITS[unit]
    if seconds > _MAX_SECONDS:
        raise _too_long(text)
    return timedelta(seconds=seconds)


def check_duration(value: timedelta) -> timedelta:
    """A duration given as a timedelta (from Python, not text): 0s to MAX_DURATION."""
    if value < timedelta(0):
        raise DurationError(f"durations cannot be negative, got {value}")
    if value > MAX_DURATION:
        raise _too_long(format_duration(value))
    return value


def _too_long(text: str) -> DurationError:
    return DurationError(
        f"duration {_shown(text)} is too long: at most {format_duration(MAX_DURATION)!r} "
        f"({MAX_DURATION.days} days)"
    )


def format_duration(value: timedelta) -> str:
    """The shortest "1h30m" text for a duration; "0s" for zero. Inverse of parse_duration.

    Sub-second parts cannot be written in a strategy file and are dropped.
    """
    total = int(value.total_seconds())
    if total < 0:
        raise DurationError(f"durations cannot be negative, got {value}")
    if total == 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
