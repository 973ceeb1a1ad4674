"""The contact policy: when and how often an account may be contacted, across campaigns.

One global policy, overridable per campaign (a campaign's file replaces the
top-level sections it names and inherits the rest). Hours are read on the
contact's own clock. Caps count attempts per account (or per phone number /
address) across every campaign and the channels they name. Written as TOML;
docs/policy.md documents each key.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from csm.errors import CsmError
from csm.strategy.durations import parse_duration
from csm.strategy.values import parse_clock
from csm.vocabulary import RESULT_CODES, Channel


class PolicyError(CsmError):
    """A policy file that does not validate; the message lists every problem with its key."""


ANY = "any"
_HOURS = re.compile(r"\s*([0-9:]+)\s*-\s*([0-9:]+)\s*")


def parse_hours(text: str) -> tuple[time, time] | None:
    """ "08:00-21:00" → (08:00, 21:00), the end exclusive; "any" → None (no limit)."""
    if text.strip().lower() == ANY:
        return None
    match = _HOURS.fullmatch(text)
    if match is None:
        raise ValueError(f"expected hours like '08:00-21:00' or 'any', got {text!r}")
    start, end = parse_clock(match[1]), parse_clock(match[2])
    if start >= end:
        raise ValueError(f"in {text!r} the end must be after the start (no crossing midnight)")
    return start, end


def _hours(text: str) -> str:
    parse_hours(text)
    return text.strip().lower() if text.strip().lower() == ANY else text.strip()


Hours = Annotated[str, AfterValidator(_hours)]
_NAME = re.compile(r"[a-z][a-z0-9_]{0,23}")
_STATE = re.compile(r"[A-Z]{2}")


def _cap_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(
            "a cap name is 1-24 lower-case letters, digits or _, starting with a letter"
        )
    return value


def _states(value: list[str]) -> list[str]:
    upper = [state.strip().upper() for state in value]
    wrong = [state for state in upper if not _STATE.fullmatch(state)]
    if wrong:
        raise ValueError(f"states are two-letter codes like 'FL', got {', '.join(wrong)}")
    return upper


def _period(value: str) -> str:
    if value != "day":
        duration = parse_duration(value)
        if duration <= timedelta(0):
            raise ValueError("a rolling period must be longer than zero")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelHours(_Strict):
    """Hours per channel on the contact's clock; `voice` also covers `dialer` passes."""

    voice: Hours | None = None
    sms: Hours | None = None
    email: Hours | None = None

    def for_channel(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.sms if channel == "sms" else self.voice


DEFAULT_HOURS = ChannelHours(voice="08:00-21:00", sms="08:00-21:00", email=ANY)


class Cap(_Strict):
    """At most `max` attempts per `per` (account or device) in `period`, across campaigns.

    `period` is "day" (the contact's calendar day) or a rolling duration ("24h", "7d").
    Only attempts on `channels` count, and only contacts in `states` (when given) are held.
    """

    name: Annotated[str, AfterValidator(_cap_name)]
    max: Annotated[int, Field(ge=1)]
    period: Annotated[str, AfterValidator(_period)] = "day"
    channels: list[Channel] = Field(default_factory=lambda: list(Channel))
    per: Literal["account", "device"] = "account"
    states: Annotated[list[str] | None, AfterValidator(lambda v: _states(v) if v else None)] = None

    @field_validator("channels")
    @classmethod
    def _some_channels(cls, value: list[Channel]) -> list[Channel]:
        if not value:
            raise ValueError("name at least one channel, or leave `channels` out for all")
        return value

    @property
    def rolling(self) -> timedelta | None:
        return None if self.period == "day" else parse_duration(self.period)

    def window_start(self, at: datetime, zone: ZoneInfo) -> datetime:
        """The earliest instant (exclusive for rolling periods) whose attempts count at `at`."""
        if self.rolling is not None:
            return at - self.rolling
        local = at.astimezone(zone)
        return datetime.combine(local.date(), time(0), tzinfo=zone)

    @property
    def lookback(self) -> timedelta:
        return self.rolling or timedelta(days=2)  # a local day, whatever the zone


def _result_code(code: str) -> str:
    if code not in RESULT_CODES:
        raise ValueError(f"unknown result code {code!r}")
    return code


class ConversationPause(_Strict):
    """No attempt on `channels` for `days` after an attempt that ended in one of `results`."""

    results: list[Annotated[str, AfterValidator(_result_code)]] = Field(
        default_factory=lambda: ["delivered_person", "agent_connected"]
    )
    days: Annotated[int, Field(ge=1, le=90)] = 7
    channels: list[Channel] = Field(default_factory=lambda: [Channel.VOICE, Channel.DIALER])


class ContactPolicy(_Strict):
    """The whole policy. Every section has a default, so an empty file is the default."""

    hours: ChannelHours = DEFAULT_HOURS
    states: dict[str, ChannelHours] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    caps: list[Cap] = Field(default_factory=list)
    conversation_pause: ConversationPause | None = None

    @field_validator("states")
    @classmethod
    def _state_codes(cls, value: dict[str, ChannelHours]) -> dict[str, ChannelHours]:
        return dict(zip(_states(list(value)), value.values(), strict=True))

    @model_validator(mode="after")
    def _caps_named_once(self) -> Self:
        names = [cap.name for cap in self.caps]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"cap names must differ: {', '.join(twice)} used twice")
        return self

    def hours_for(self, channel: str, state: str | None) -> tuple[time, time] | None:
        """The contact's allowed hours on `channel` (None: any time)."""
        override = self.states.get(state) if state else None
        text = override.for_channel(channel) if override else None
        if text is None:
            # A channel left out of a written [hours] keeps the default: never no limit
            # by omission; "any" must be written.
            text = self.hours.for_channel(channel) or DEFAULT_HOURS.for_channel(channel) or ANY
        return parse_hours(text)

    @property
    def enforces_caps(self) -> bool:
        return bool(self.caps) or self.conversation_pause is not None

    @property
    def lookback(self) -> timedelta:
        """How far back the attempts that caps and the conversation pause count may lie."""
        spans = [cap.lookback for cap in self.caps]
        if self.conversation_pause:
            spans.append(timedelta(days=self.conversation_pause.days))
        return max(spans, default=timedelta(0))


#: Built-in policy texts `csm policy set --preset NAME` stores.
PRESETS: dict[str, str] = {
    "reg_f": """\
# CFPB Regulation F (12 CFR 1006.14): at most 7 calls in 7 days per account, and none in the
# 7 days after a telephone conversation; TCPA calling hours 08:00-21:00 local.
[hours]
voice = "08:00-21:00"
sms = "08:00-21:00"
email = "any"

[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]

[conversation_pause]
results = ["delivered_person", "agent_connected"]
days = 7
channels = ["voice", "dialer"]
""",
    "florida": """\
# Florida Telephone Solicitation Act: 08:00-20:00 and at most 3 calls per 24 hours
# for contacts whose `state` attribute is FL (on top of the TCPA default hours).
[states.FL]
voice = "08:00-20:00"
sms = "08:00-20:00"

[[caps]]
name = "fl_3_per_24h"
max = 3
period = "24h"
channels = ["voice", "dialer", "sms"]
states = ["FL"]
""",
    "default": "# The built-in default: calling hours 08:00-21:00 local for voice and sms.\n",
}


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part + 1}]"]
        else:
            parts.append(str(part))
    return ".".join(parts) or "(file)"


def parse_policy_text(text: str) -> dict[str, Any]:
    """TOML → the sections as written (validated), for storing and merging."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"not valid TOML: {error}") from None
    try:
        policy = ContactPolicy.model_validate(raw)
    except ValidationError as error:
        problems = [
            f"{_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        ]
        raise PolicyError("; ".join(problems)) from None
    return policy.model_dump(mode="json", include=set(raw))


def merge_policy(
    global_sections: dict[str, Any], campaign_sections: dict[str, Any]
) -> ContactPolicy:
    """The campaign's sections replace the global ones; the rest are inherited."""
    return ContactPolicy.model_validate({**global_sections, **campaign_sections})
