"""The validated form of a strategy file: the passes of a campaign day.

These models are the contract between the strategy file, the database
(`strategies.definition`, as `model_dump(mode="json")`) and the workflows
(a Temporal payload: it holds names, codes, filters and templates, never
personal data). Every key has a default except `timezone`, and a pass's
`name` and `channel`, so the smallest strategy is short; unknown keys are
errors so a typo never passes silently. docs/strategy.md documents each key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from csm.errors import CsmError
from csm.strategy.checks import cross_check
from csm.strategy.values import (
    WEEKDAYS,
    ClockTime,
    DayName,
    Duration,
    GroupName,
    NonNegativeInt,
    PositiveInt,
    Text,
    WindowZone,
    ZoneName,
    check_line,
    check_name,
    check_template,
    check_text,
    did_you_mean,
    with_hint,
)
from csm.vocabulary import CHANNEL_DEVICE_KINDS, RESULT_CODES, Channel, DeviceKind

#: Validation context key: the loader already ran the cross-pass checks on the raw file.
CROSS_CHECKED = "cross_checked"

#: The most allowed days a pass may wait after the previous one: a year. Planning walks
#: day by day, and a bigger count would plan past the end of the calendar (year 9999).
MAX_DAYS_TO_WAIT = 366

#: The most shards one pass may be split into (`pacing.shards`): a pass's shards run as that
#: many activities at once, each holding a database connection while it runs.
MAX_SHARDS = 32


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt optional key would otherwise mean its default."""

    model_config = ConfigDict(extra="forbid")


class Window(_Strict):
    """The part of the day a pass may attempt contacts, read on one zone's clock."""

    start: ClockTime
    end: ClockTime
    zone: WindowZone = "contact"

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start >= self.end:
            raise ValueError(
                f"end {self.end:%H:%M} must be after start {self.start:%H:%M} "
                "(a window cannot cross midnight)"
            )
        return self


class Pacing(_Strict):
    """How fast a pass goes: attempts started per minute, and attempts in flight at once.

    Dialer passes are also paced by their free agents (csm.dialer): `mode`
    progressive dials one line per free agent, predictive adds lines as far as
    `abandon_limit` allows; a person answered waits up to `hold` for an agent.

    `shards` splits the pass's first sweep into that many parts run at once, on
    as many worker processes as there are: the limits above hold for the pass
    as a whole, so each shard gets its share of `per_minute` and `concurrency`.
    """

    per_minute: PositiveInt | None = None
    concurrency: PositiveInt = 10
    mode: Literal["progressive", "predictive"] = "progressive"
    abandon_limit: Annotated[float, Field(gt=0, le=0.2)] = 0.03
    hold: Duration = timedelta(seconds=2)
    shards: Annotated[PositiveInt, Field(le=MAX_SHARDS)] = 1

    @model_validator(mode="after")
    def _a_share_for_each_shard(self) -> Self:
        for key in ("per_minute", "concurrency"):
            value = getattr(self, key)
            if value is not None and value < self.shards:
                raise ValueError(
                    f"pacing.{key} ({value}) is less than pacing.shards ({self.shards}): "
                    f"each shard needs at least 1 of the pass's {key}"
                )
        return self

    def shared(self, shards: int) -> Pacing:
        """One shard's share of the pass's limits (rounded down: together never more)."""
        if shards <= 1:
            return self
        return self.model_copy(
            update={
                "per_minute": self.per_minute // shards if self.per_minute else None,
                "concurrency": max(self.concurrency // shards, 1),
            }
        )

    @field_validator("hold")
    @classmethod
    def _hold_short(cls, value: timedelta) -> timedelta:
        if value > timedelta(minutes=5):
            raise ValueError("hold is how long a person waits for an agent: at most 5m")
        return value


class Retries(_Strict):
    """Extra tries of the same device inside one pass, with a minimum gap between them."""

    per_device: Annotated[NonNegativeInt, Field(le=10)] = 0
    gap: Duration = timedelta(minutes=10)


def _channel_devices(data: dict[str, Any]) -> list[DeviceKind]:
    channel = data.get("channel")
    return list(CHANNEL_DEVICE_KINDS[channel]) if channel in CHANNEL_DEVICE_KINDS else []


def _a(channel: Channel) -> str:
    """ "an sms", "a voice": error messages read as sentences."""
    return f"{'an' if channel in (Channel.SMS, Channel.EMAIL) else 'a'} {channel.value}"


def _non_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


_PassName = Annotated[
    str, AfterValidator(check_name), AfterValidator(_non_blank), Field(max_length=100)
]
_AgentGroup = Annotated[str, AfterValidator(check_name), Field(min_length=1, max_length=64)]


class PassDefinition(_Strict):
    """One sweep through the contacts its filter selects, on one channel."""

    name: _PassName
    channel: Channel
    source: Literal["all", "previous"] = "all"
    filter: Text = ""
    devices: list[DeviceKind] = Field(default_factory=_channel_devices)
    window: Window | None = None
    after: Duration | None = None
    days_to_wait: Annotated[NonNegativeInt, Field(le=MAX_DAYS_TO_WAIT)] = 0
    allowed_days: list[DayName] = Field(default_factory=lambda: list(WEEKDAYS))
    pacing: Pacing = Field(default_factory=Pacing)
    retries: Retries = Field(default_factory=Retries)
    template: str | None = None
    subject: str | None = None
    agents: _AgentGroup | None = None
    alongside: bool = False

    @model_validator(mode="after")
    def _agents_fit_channel(self) -> Self:
        if self.agents is not None and self.channel not in (Channel.VOICE, Channel.DIALER):
            raise ValueError(
                f"agents take calls: {_a(self.channel)} pass cannot have an agent group"
            )
        defaults = Pacing()
        dialing = [
            key
            for key in ("mode", "abandon_limit", "hold")
            if getattr(self.pacing, key) != getattr(defaults, key)
        ]  # compared with the defaults: a stored strategy has every key written out
        if dialing and self.channel is not Channel.DIALER:
            raise ValueError(
                f"pacing.{dialing[0]} is for dialer passes, this is {_a(self.channel)} pass"
            )
        if self.pacing.shards > 1 and self.agent_group is not None:
            raise ValueError(
                "pacing.shards: a pass with agents is paced by its free agents and runs in "
                "one piece: remove `shards` (or `agents`)"
            )
        if self.alongside and (self.after is not None or self.source == "previous"):
            raise ValueError(
                "a pass that runs alongside the previous one starts with it: "
                'remove `after` and `source = "previous"`'
            )
        return self

    @property
    def agent_group(self) -> str | None:
        """The agents who take this pass's live answers: a dialer pass always has some."""
        if self.channel is Channel.DIALER:
            return self.agents or "default"
        return self.agents

    @field_validator("devices")
    @classmethod
    def _devices_suit_channel(cls, value: list[DeviceKind], info: ValidationInfo) -> Any:
        if not value:
            raise ValueError("list at least one device kind, or leave `devices` out")
        duplicates = sorted({kind.value for kind in value if value.count(kind) > 1})
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed more than once")
        channel = info.data.get("channel")
        if channel is not None:
            usable = CHANNEL_DEVICE_KINDS[channel]
            wrong = [kind.value for kind in value if kind not in usable]
            if wrong:
                raise ValueError(
                    f"{', '.join(wrong)} cannot be used by {_a(channel)} pass "
                    f"({channel.value} uses: {', '.join(kind.value for kind in usable)})"
                )
        return value

    @field_validator("allowed_days")
    @classmethod
    def _days_once(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one weekday, or leave `allowed_days` out")
        duplicates = sorted({day for day in value if value.count(day) > 1})
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed more than once")
        return value

    @field_validator("template")
    @classmethod
    def _template_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("channel") is Channel.DIALER:
            raise ValueError("dialer passes have no message template: an agent takes the call")
        return check_template(check_text(value))

    @field_validator("subject")
    @classmethod
    def _subject_for_email(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        channel = info.data.get("channel")
        if channel is not None and channel is not Channel.EMAIL:
            raise ValueError(f"only email passes have a subject, this is {_a(channel)} pass")
        return check_template(check_line(value, "a subject"))


def _known_code(code: str) -> str:
    if code not in RESULT_CODES:
        raise ValueError(
            with_hint(f"unknown result code {code!r}", did_you_mean(code, RESULT_CODES))
        )
    return code


class ResponseGroupDefinition(_Strict):
    """A named set of result codes; `final` stops contacting the account."""

    codes: Annotated[list[Annotated[str, AfterValidator(_known_code)]], Field(min_length=1)]
    final: Literal["campaign", "all_campaigns"] | None = None

    @field_validator("codes")
    @classmethod
    def _codes_once(cls, value: list[str]) -> list[str]:
        duplicates = sorted({code for code in value if value.count(code) > 1})
        if duplicates:
            raise ValueError(f"{', '.join(duplicates)} listed more than once")
        return value


class UnknownPassError(CsmError):
    """A pass name that the strategy does not have."""


class StrategyDefinition(_Strict):
    """A campaign's defined strategy: its zone, response groups and ordered passes."""

    timezone: ZoneName
    response_groups: dict[GroupName, ResponseGroupDefinition] = Field(default_factory=dict)
    passes: Annotated[list[PassDefinition], Field(min_length=1)]

    @model_validator(mode="after")
    def _passes_fit_together(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(CROSS_CHECKED):
            return self
        passes = [
            {
                "name": p.name,
                "source": p.source,
                "after": p.after,
                "filter": p.filter,
                "alongside": p.alongside,
            }
            for p in self.passes
        ]
        problems = cross_check(passes, self.groups())
        if problems:
            raise ValueError("; ".join(f"{_where(p.loc, self)}: {p.message}" for p in problems))
        return self

    def groups(self) -> dict[str, list[str]]:
        """Response group name → result codes: what filters and the ledger's views need."""
        return {name: list(group.codes) for name, group in self.response_groups.items()}

    def pass_by_name(self, name: str) -> PassDefinition:
        """The pass called `name` (exact match), or a CsmError naming the closest pass."""
        for candidate in self.passes:
            if candidate.name == name:
                return candidate
        names = [p.name for p in self.passes]
        raise UnknownPassError(with_hint(f"unknown pass {name!r}", did_you_mean(name, names)))

    def pass_number(self, name: str) -> int:
        """The 1-based position of the pass called `name` (how the ledger numbers passes)."""
        wanted = self.pass_by_name(name)
        return next(number for number, p in enumerate(self.passes, 1) if p is wanted)


def _where(loc: tuple[int | str, ...], strategy: StrategyDefinition) -> str:
    """ "pass 2 'retry no answers': filter" for a cross-check location."""
    index, field = int(loc[1]), loc[2]
    return f"pass {index + 1} {strategy.passes[index].name!r}: {field}"
