"""Value types of strategy files: durations, times of day, time zones, weekdays, text.

Each type accepts what a person writes in TOML ("10m", "09:00", "mon") and
dumps back to the same readable text, so a strategy stored as JSON or sent
in a Temporal payload reads the way it was written. Errors are ValueErrors
whose message says what was expected; the loader adds the location.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable
from datetime import time, timedelta
from functools import cache
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, Strict

from csm.names import describe_character, first_line_break
from csm.strategy.durations import check_duration, format_duration, parse_duration


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """A "did you mean 'x'?" hint for the closest choice, compared case-insensitively."""
    if not isinstance(word, str):
        return None
    by_folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f"did you mean '{by_folded[close[0]]}'?" if close else None


def with_hint(message: str, hint: str | None) -> str:
    return f"{message} ({hint})" if hint else message


# --- durations ---------------------------------------------------------------


def _to_duration(value: object) -> object:
    if isinstance(value, timedelta):
        return check_duration(value)
    return parse_duration(value)  # type: ignore[arg-type]


#: A duration written "90s", "10m", "1h30m", "2d" (0s to 400d); dumps to the same text.
Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# --- times of day ------------------------------------------------------------

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_clock(value: object) -> time:
    """ "09:00" or "9:00:30" (or a TOML local time) → a naive time of day.

    Naive on purpose: the window's `zone` says whose clock the time is read on.
    """
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError("write a local time like '09:00'; the window's zone gives the zone")
        return value
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a time of day like '09:00' or '17:30', got {value!r}")
    hour, minute, second = (int(part or 0) for part in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59:59)")
    return time(hour, minute, second)


def format_clock(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


#: A time of day written "09:00"; dumps to the same text.
ClockTime = Annotated[
    time,
    BeforeValidator(parse_clock),
    PlainSerializer(format_clock, return_type=str, when_used="json"),
]

# --- time zones --------------------------------------------------------------


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_zone(name: str) -> str:
    """An IANA zone name ("America/Chicago") that zoneinfo can load."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(name, _zone_names())
        raise ValueError(
            with_hint(f"unknown time zone {name!r}: use an IANA name like 'America/Chicago'", hint)
        ) from None
    return name


def _to_zone(value: object) -> object:
    return check_zone(value) if isinstance(value, str) else value


#: An IANA time zone name, checked against the zone database.
ZoneName = Annotated[str, Strict(), BeforeValidator(_to_zone)]

#: Where a window's times are read: the contact's zone, the campaign's, or a fixed IANA zone.
WINDOW_ZONES = ("contact", "campaign")


def _to_window_zone(value: object) -> object:
    if isinstance(value, str) and value in WINDOW_ZONES:
        return value
    if isinstance(value, str):
        try:
            return check_zone(value)
        except ValueError as err:
            raise ValueError(f"{err}, or 'contact' or 'campaign'") from None
    return value


WindowZone = Annotated[str, Strict(), BeforeValidator(_to_window_zone)]

# --- weekdays ----------------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _to_weekday(value: object) -> object:
    """Accept "Mon" and "monday" too: the stored form is always the three-letter name."""
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in _FULL_DAY_NAMES:
            return WEEKDAYS[_FULL_DAY_NAMES.index(folded)]
        return folded
    return value


DayName = Annotated[Weekday, BeforeValidator(_to_weekday)]

# --- text, names, identifiers and templates ----------------------------------

#: Control characters no strategy text may hold: C0 and DEL, except tab, line feed and
#: carriage return (a template may have several lines). PostgreSQL cannot store NUL in
#: a jsonb value at all, and the others are typing or copying mistakes that would
#: garble a terminal or a message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Names (of passes, of agent groups) and e-mail subjects are one line: no control
#: characters at all, nor Unicode's line and paragraph separators.
_character = describe_character


def check_text(text: str) -> str:
    """Any text of a strategy: refuse NUL and the other control characters but tab and newline."""
    found = _CONTROL.search(text)
    if found is not None:
        raise ValueError(
            f"control character {_character(text, found.start())}: strategy text may hold "
            "tabs and line breaks but no other control characters"
        )
    return text


def check_line(text: str, what: str) -> str:
    """One line of text (a name, a subject): no tabs, line breaks or control characters."""
    index = first_line_break(text)
    if index is not None:
        raise ValueError(
            f"control character {_character(text, index)}: {what} is one line of "
            "text, without tabs, line breaks or other control characters"
        )
    return text


def check_name(text: str) -> str:
    """A name shown in tables, logs and the Temporal UI: one line, no control characters."""
    return check_line(text, "a name")


#: Free text (a filter, a template): no NUL or other control characters but tab and newline.
Text = Annotated[str, AfterValidator(check_text)]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_identifier(name: str, what: str) -> str:
    """Names that filters and templates refer to must be plain identifiers."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} must be an identifier (letters, digits and _, not starting "
            "with a digit)"
        )
    return name


def _group_name(value: object) -> object:
    return check_identifier(value, "response group name") if isinstance(value, str) else value


GroupName = Annotated[str, Strict(), BeforeValidator(_group_name)]


def check_template(text: str) -> str:
    """Placeholders are `${attribute}` or `$attribute` (string.Template); `$$` is a literal $.

    Checked here so a typo fails when the file is loaded, not at the first send.
    """
    template = string.Template(text)
    for match in template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise ValueError(
                f"bad placeholder at character {match.start() + 1}: write ${{name}} with an "
                "identifier name (letters, digits, _), and $$ for a literal $"
            )
    return text


StrictInt = Annotated[int, Strict()]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
