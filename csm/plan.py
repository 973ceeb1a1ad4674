"""A sub-campaign's plan for one campaign day: the passes, their times and their status.

Pure data and pure functions, shared by the workflow (deterministic code), the
activities and the CLI. Everything here is ids, names, codes, times and
counts: no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from csm.strategy.model import PassDefinition, Window


class PassStatus(StrEnum):
    PENDING = "pending"  # not started; its time has not come
    WAITING = "waiting"  # next to run, waiting for its window or `after` delay
    RUNNING = "running"
    PAUSED = "paused"  # started, interrupted by pause; resumes from its cursor
    DONE = "done"
    SKIPPED = "skipped"  # by an amendment, or its window closed before it could start
    STOPPED = "stopped"  # the sub-campaign was stopped while it ran

    @property
    def started(self) -> bool:
        return self in (PassStatus.RUNNING, PassStatus.PAUSED, PassStatus.DONE, PassStatus.STOPPED)

    @property
    def final(self) -> bool:
        return self in (PassStatus.DONE, PassStatus.SKIPPED, PassStatus.STOPPED)


class PassCounts(BaseModel):
    """What a pass did: counts only."""

    selected: int = 0
    attempted: int = 0  # contacts with at least one real try
    skipped: int = 0  # contacts that got a skip reason instead
    unknown: int = 0  # attempts whose outcome was never learned (crash mid-send)
    results: dict[str, int] = Field(default_factory=dict)  # result code → attempt rows
    skip_reasons: dict[str, int] = Field(default_factory=dict)


class PlannedPass(BaseModel):
    """One pass of today's plan. `number` is stable for the day (the ledger's pass number)."""

    number: int
    definition: PassDefinition
    status: PassStatus = PassStatus.PENDING
    amended: bool = False
    added: bool = False  # added today by an amendment
    note: str = ""  # why it was skipped, or why it waits now (counts and times only)
    counts: PassCounts | None = None


class AmendmentRecord(BaseModel):
    """The amendment log: who asked what, when, and whether it applied.

    `pending`: it arrived before the day's plan existed and is held until it does. A
    pause, resume or stop that arrived before the plan is logged here too (operations
    `["pause"]`...), since no pass can show its effect yet. It lives here, with the plan,
    because the `plan` query answers with it (`PlanView`).
    """

    number: int
    author: str
    reason: str
    received_at: datetime
    until: datetime | None
    operations: list[str]  # "skip 3", "set_filter 'retry'"...
    outcome: Literal["pending", "applied", "rejected", "expired"]  # pending: held for the plan
    message: str = ""


#: The sub-campaign workflow's query that answers with a `PlanView`. Readers query it by
#: name (`handle.query(PLAN_QUERY, result_type=PlanView)`), so `csm status` and the web
#: page need not import the workflow module and the activities behind it.
PLAN_QUERY = "plan"


@dataclass
class PlanView:
    """What the `plan` query answers: today's passes and the amendment log. Counts only."""

    sub_campaign: str
    day: date | None
    state: str
    strategy_version: int | None
    passes: list[PlannedPass]
    amendments: list[AmendmentRecord]


class DayPlan(BaseModel):
    """What the plan activity resolved for one campaign day (all instants in UTC)."""

    day: date
    campaign_timezone: str
    strategy_version: int
    day_starts_at: datetime
    day_ends_at: datetime
    #: UTC offset (minutes) of each zone that matters today: the campaign's and the list's.
    zone_offsets: dict[str, int]
    passes: list[PlannedPass]
    #: The next campaign day with a pass due, or None when the pass pattern ends today.
    next_day: date | None
    next_day_starts_at: datetime | None = None
    list_has_contacts: bool = True


def window_span(window: Window | None, plan: DayPlan) -> tuple[datetime, datetime] | None:
    """The UTC instants a window opens (for the earliest contact) and closes (for the latest)."""
    if window is None:
        return None
    if window.zone == "contact":
        offsets = [m for zone, m in plan.zone_offsets.items() if zone != "@campaign"]
        offsets = offsets or [plan.zone_offsets["@campaign"]]
    elif window.zone == "campaign":
        offsets = [plan.zone_offsets["@campaign"]]
    elif window.zone in plan.zone_offsets:
        offsets = [plan.zone_offsets[window.zone]]
    else:
        raise KeyError(window.zone)
    midnight = datetime.combine(plan.day, datetime.min.time(), tzinfo=UTC)

    def instant(clock, offset: int) -> datetime:
        local = midnight + timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second)
        return local - timedelta(minutes=offset)

    opens = min(instant(window.start, offset) for offset in offsets)
    closes = max(instant(window.end, offset) for offset in offsets)
    return opens, closes


@dataclass
class WaitNote:
    """A running pass's word on why it waits, or "" once it works again: what the pass
    activity sends its workflow (signal `pass_note`) so status, the web page and the
    Temporal UI can tell a wait from a hang. Counts and times only, never personal data."""

    pass_number: int
    note: str


def campaign_clock(at: datetime, plan: DayPlan) -> str:
    """`at` as a manager reads it: on the campaign's clock, and in UTC."""
    utc = at.astimezone(UTC)
    offset = plan.zone_offsets.get("@campaign")
    if offset is None:
        return f"{utc:%H:%M} UTC"
    return f"{utc + timedelta(minutes=offset):%H:%M} {plan.campaign_timezone} ({utc:%H:%M} UTC)"


def find_pass(passes: list[PlannedPass], reference: str | int) -> PlannedPass:
    """A pass by number (int or digits) or by name; KeyError with a readable message."""
    text = str(reference).strip()
    for planned in passes:
        if text.isdigit() and planned.number == int(text):
            return planned
    for planned in passes:
        if planned.definition.name == text:
            return planned
    names = ", ".join(f"{p.number} '{p.definition.name}'" for p in passes)
    raise KeyError(f"unknown pass {reference!r} (today's passes: {names})")


@dataclass(frozen=True)
class Opening:
    """When a pass may start today, what it waits for until then, and when it is too late."""

    starts_at: datetime
    waits_for: str  # "the campaign day", "its window", "its `after` delay"
    closes_at: datetime


def pass_opening(
    definition: PassDefinition, plan: DayPlan, last_pass_ended: datetime | None
) -> Opening:
    """The latest of the day's start, the pass's window opening and its `after` delay (from
    the end of the previous pass); it closes with its window, else with the day."""
    starts_at, waits_for = plan.day_starts_at, "the campaign day"
    span = window_span(definition.window, plan)
    if span is not None and span[0] > starts_at:
        starts_at, waits_for = span[0], "its window"
    if definition.after is not None and last_pass_ended is not None:
        after_at = last_pass_ended + definition.after
        if after_at > starts_at:
            starts_at, waits_for = after_at, "its `after` delay"
    closes_at = span[1] if span is not None else plan.day_ends_at
    return Opening(starts_at, waits_for, closes_at)
