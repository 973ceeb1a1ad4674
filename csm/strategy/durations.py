"""Durations as people write them in strategy files: "90s", "10m", "1h30m", "2d".

A strategy file is read and edited by campaign managers, so delays and gaps
are short unit strings rather than seconds or ISO 8601 ("PT1H30M"). The same
text is what the model dumps to JSON, so a stored or sent strategy reads the
way it was written.
"""

from __future__ import annotations

import re
from datetime import timedelta

#: Units in the order they must appear, largest first.
UNITS: dict[str, int] = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

_PART = re.compile(r"(\d+)([dhms])")
_WHOLE = re.compile(r"(?:\d+[dhms])+")

EXAMPLES = "'90s', '10m', '1h30m' or '2d'"


class DurationError(ValueError):
    """Text that is not a duration; the message says what a duration looks like."""


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m" style text: whole numbers with units d, h, m, s, largest unit first.

    Each unit at most once, so a typo like "1h1h" is an error instead of two hours.
    """
    if not isinstance(text, str):
        raise DurationError(f"expected a duration like {EXAMPLES}, got {text!r}")
    compact = text.strip().lower()
    if not compact or not _WHOLE.fullmatch(compact):
        raise DurationError(f"expected a duration like {EXAMPLES}, got {text!r}")
    seconds = 0
    previous_rank = -1
    for amount, unit in _PART.findall(compact):
        rank = list(UNITS).index(unit)
        if rank <= previous_rank:
            raise DurationError(
                f"duration {text!r}: each unit once, largest first (d, h, m, s), like '1h30m'"
            )
        previous_rank = rank
        seconds += int(amount) * UNITS[unit]
    return timedelta(seconds=seconds)


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
