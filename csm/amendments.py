"""Dynamic strategy: a manager's same-day amendment of a running sub-campaign's plan.

An amendment is a list of operations on today's passes that have not started.
`apply_amendment` is pure and deterministic: the workflow's update validator
calls it to reject bad edits with a clear message, and the handlers call it to
apply good ones. The next day starts from the defined strategy again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from csm.errors import CsmError
from csm.filters import FilterError, check_filter
from csm.plan import AmendmentRecord as AmendmentRecord  # the log's entry: lives with the plan
from csm.plan import DayPlan, PassStatus, PlannedPass, find_pass, window_span
from csm.strategy.model import Pacing, PassDefinition, Window
from csm.vocabulary import CHANNEL_DEVICE_KINDS, Channel

PassRef = Annotated[str | int, Field(description="pass number or name")]


class AmendmentRejected(CsmError):
    """An amendment that cannot apply; the message says which operation and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SkipPass(_Strict):
    op: Literal["skip"] = "skip"
    target: PassRef


class SetFilter(_Strict):
    op: Literal["set_filter"] = "set_filter"
    target: PassRef
    filter: str


class SetChannel(_Strict):
    op: Literal["set_channel"] = "set_channel"
    target: PassRef
    channel: Channel


class SetWindow(_Strict):
    op: Literal["set_window"] = "set_window"
    target: PassRef
    window: Window | None


class SetPacing(_Strict):
    op: Literal["set_pacing"] = "set_pacing"
    target: PassRef
    pacing: Pacing


class SetTemplate(_Strict):
    op: Literal["set_template"] = "set_template"
    target: PassRef
    template: str | None
    subject: str | None = None


class AddPass(_Strict):
    op: Literal["add_after"] = "add_after"
    target: PassRef  # the new pass runs right after this one
    definition: PassDefinition


class MovePass(_Strict):
    op: Literal["move"] = "move"
    target: PassRef
    after: PassRef | None = None  # None: to the front of the passes not yet started


Operation = Annotated[
    SkipPass | SetFilter | SetChannel | SetWindow | SetPacing | SetTemplate | AddPass | MovePass,
    Field(discriminator="op"),
]


class Amendment(_Strict):
    """One change of today's plan. `until` (UTC) ends it: then the defined plan applies again."""

    operations: Annotated[list[Operation], Field(min_length=1, max_length=50)]
    until: datetime | None = None
    author: Annotated[str, Field(max_length=100)] = "unknown"
    reason: Annotated[str, Field(max_length=200)] = ""

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("until must carry its time zone (UTC instant)")
        return value


def describe(operation: BaseModel) -> str:
    return f"{operation.op} {operation.target!r}"  # type: ignore[attr-defined]


def parse_amendment(payload: object) -> Amendment:
    """An Amendment from a raw payload (a dict, as a signal or update carries it), or
    AmendmentRejected with the reason in one line."""
    if isinstance(payload, Amendment):
        return payload
    try:
        return Amendment.model_validate(payload)
    except ValidationError as err:
        raise AmendmentRejected(f"malformed amendment: {validation_message(err)}") from None


def validation_message(err: ValidationError) -> str:
    """The first problem of a pydantic error in one line: where, what (and how many more)."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    what = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {what}{more}" if where else f"{what}{more}"


def apply_amendment(
    plan: DayPlan,
    passes: list[PlannedPass],
    amendment: Amendment,
    *,
    now: datetime,
    groups: dict[str, list[str]],
) -> list[PlannedPass]:
    """Today's passes with `amendment` applied; AmendmentRejected if any operation cannot apply.

    All or nothing: a rejected amendment leaves `passes` untouched (we work on a copy).
    """
    if amendment.until is not None and amendment.until <= now:
        raise AmendmentRejected(f"until {amendment.until:%H:%M} UTC is already past")
    result = [p.model_copy(deep=True) for p in passes]
    for index, operation in enumerate(amendment.operations, start=1):
        label = f"operation {index} ({describe(operation)})"
        try:
            result = _apply(plan, result, operation, now=now, groups=groups)
        except ValidationError as err:  # a changed pass that no longer validates
            raise AmendmentRejected(f"{label}: {validation_message(err)}") from None
        except (KeyError, ValueError, FilterError, AmendmentRejected) as err:
            message = err.args[0] if isinstance(err, KeyError) else str(err)
            raise AmendmentRejected(f"{label}: {message}") from None
    return result


def _open(passes: list[PlannedPass], reference: str | int) -> PlannedPass:
    planned = find_pass(passes, reference)
    if planned.status.started or planned.status.final:
        raise AmendmentRejected(
            f"pass {planned.number} '{planned.definition.name}' is {planned.status.value}; "
            "only passes that have not started can change"
        )
    return planned


def _check_window(plan: DayPlan, window: Window | None, now: datetime) -> None:
    try:
        span = window_span(window, plan)
    except KeyError:
        raise AmendmentRejected(
            f"window zone {window.zone!r} is not in use today; use 'contact' or 'campaign'"  # type: ignore[union-attr]
        ) from None
    if span is not None and span[1] <= now:
        raise AmendmentRejected(
            f"window {window.start:%H:%M}-{window.end:%H:%M} is already past"  # type: ignore[union-attr]
        )


def _changed(planned: PlannedPass, **updates: object) -> None:
    data = planned.definition.model_dump()
    data.update(updates)
    planned.definition = PassDefinition.model_validate(data)
    planned.amended = True


def _apply(
    plan: DayPlan,
    passes: list[PlannedPass],
    operation: BaseModel,
    *,
    now: datetime,
    groups: dict[str, list[str]],
) -> list[PlannedPass]:
    match operation:
        case SkipPass(target=target):
            planned = _open(passes, target)
            planned.status = PassStatus.SKIPPED
            planned.note = "skipped by amendment"
            planned.amended = True
        case SetFilter(target=target, filter=text):
            planned = _open(passes, target)
            check_filter(text, groups)
            _changed(planned, filter=text)
        case SetChannel(target=target, channel=channel):
            planned = _open(passes, target)
            usable = CHANNEL_DEVICE_KINDS[channel]
            kinds = [k for k in planned.definition.devices if k in usable] or list(usable)
            updates: dict[str, object] = {"channel": channel, "devices": kinds}
            if channel is not Channel.EMAIL:
                updates["subject"] = None
            if channel is Channel.DIALER:
                updates["template"] = None
            _changed(planned, **updates)
        case SetWindow(target=target, window=window):
            planned = _open(passes, target)
            _check_window(plan, window, now)
            _changed(planned, window=window)
        case SetPacing(target=target, pacing=pacing):
            _changed(_open(passes, target), pacing=pacing)
        case SetTemplate(target=target, template=template, subject=subject):
            _changed(_open(passes, target), template=template, subject=subject)
        case AddPass(target=target, definition=definition):
            anchor = find_pass(passes, target)
            if any(p.definition.name == definition.name for p in passes):
                raise AmendmentRejected(f"a pass named '{definition.name}' exists already")
            check_filter(definition.filter, groups)
            _check_window(plan, definition.window, now)
            position = passes.index(anchor) + 1
            if any(p.status.started for p in passes[position:]):
                raise AmendmentRejected("a new pass can only go after the running pass")
            number = max(p.number for p in passes) + 1
            new = PlannedPass(number=number, definition=definition, amended=True, added=True)
            passes = [*passes[:position], new, *passes[position:]]
        case MovePass(target=target, after=after):
            planned = _open(passes, target)
            rest = [p for p in passes if p is not planned]
            if after is None:
                position = next(
                    (i for i, p in enumerate(rest) if not (p.status.started or p.status.final)),
                    len(rest),
                )
            else:
                anchor = find_pass(rest, after)
                position = rest.index(anchor) + 1
                if any(p.status.started for p in rest[position:]):
                    raise AmendmentRejected("a pass can only move after the running pass")
            planned.amended = True
            passes = [*rest[:position], planned, *rest[position:]]
    return passes
