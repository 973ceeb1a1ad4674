"""Freezing a round's selection, once per round: the pass's own (round 0) and its retries.

Both rounds are frozen the same way, in SQLAlchemy Core (the filter compiles to it): the
round's `pass_progress` row is claimed, its contacts are stored in `pass_selections`
with dense seqs 1..selected in the order they are to be worked, and the count is noted,
in one transaction. A retry of the activity finds the round claimed and freezes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Select,
    SmallInteger,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    not_,
    null,
    select,
)
from sqlalchemy.dialects import postgresql
from temporalio import activity

from csm.compliance.policy import ContactPolicy
from csm.filters import check_filter
from csm.ledger import PassKey, progress
from csm.passes.context import PassRun
from csm.passes.decision import ENDS_CONTACT, RETRYABLE
from csm.passes.notes import note
from csm.selection import attempts, contacts, frozen_selection, selection_query
from csm.tables import PassProgress, PassSelection

if TYPE_CHECKING:
    from csm.pooled import Connection

_T = TypeVar("_T")
#: How often a long statement heartbeats (the workflows' heartbeat timeout is 10 s).
HEARTBEAT_SECONDS = 2.0

_progress = PassProgress.__table__
_selections = PassSelection.__table__


async def freeze_first(run: PassRun, policy: ContactPolicy | None) -> None:
    """Store the pass's selection (round 0) once, ordered by when each contact's window
    opens: the later of the pass's window and the policy's hours for the contact's state
    (read on the contact's clock). Contacts whose window is open come first, so a state
    whose hours open later waits at the end instead of holding up the contacts behind it."""
    params = run.params
    key = PassKey(params.sub_campaign_id, params.day, params.pass_number)
    among = None
    if params.definition.source == "previous" and params.previous_selection is not None:
        previous_day, previous_number = params.previous_selection
        among = contacts.c.id.in_(
            frozen_selection(params.sub_campaign_id, previous_day, previous_number)
        )
    order: list[ColumnElement] = [contacts.c.id]
    opens = opening(run, policy)
    if opens is not None:
        order = [opens.asc().nulls_first(), contacts.c.id]
    query = selection_query(
        list_id=params.list_id,
        node=check_filter(params.definition.filter, params.response_groups),
        response_groups=params.response_groups,
        sub_campaign_id=params.sub_campaign_id,
        day=params.day,
        among=among,
    ).with_only_columns(*_round_columns(key), func.row_number().over(order_by=order), contacts.c.id)
    await _freeze(run, key, query)


async def freeze_retry(run: PassRun, connection: Connection, key: PassKey) -> bool:
    """Freeze round `key.round`: contacts whose devices gave a retryable result in the
    previous round and whom nothing has reached, once the pass's gap has passed since the
    previous round's last attempt. False: nobody to retry."""
    existing = await progress(connection, key)
    if existing is not None:
        return existing["selected"] > 0
    await _retry_gap(run, connection, key)
    selected = await _freeze(run, key, _retry_selection(key))
    return selected is None or selected > 0  # None: claimed meanwhile by another try


async def _retry_gap(run: PassRun, connection: Connection, key: PassKey) -> None:
    """Wait (heartbeating, the pass's note saying so) for the retry gap: the pass's
    minimum gap after the previous round's last attempt."""
    clock = run.clock
    last_try = await connection.fetchval(
        "SELECT max(attempted_at) FROM attempts WHERE sub_campaign_id = $1 AND day = $2"
        " AND pass_number = $3 AND try_number = $4",
        *key.args,
        key.round - 1,
    )
    due = (last_try or clock.now()) + run.params.definition.retries.gap
    if due > clock.now():
        retry_at = due.astimezone(UTC)
        note(f"waiting for the retry gap: try {key.round + 1} from {retry_at:%H:%M} UTC")
    while (wait := (due - clock.now()).total_seconds()) > 0:
        activity.heartbeat()
        await asyncio.sleep(min(wait, 1.0))
    note("")


def _round_columns(key: PassKey) -> tuple[ColumnElement, ...]:
    """The round's identity as the first columns of its selection's rows."""
    return (
        literal(key.sub_campaign_id, Integer),
        literal(key.day, Date),
        literal(key.pass_number, SmallInteger),
        literal(key.round, SmallInteger),
    )


def _retry_selection(key: PassKey) -> Select:
    """The previous round's contacts, in its order, whose devices gave a retryable result
    in it and whom no attempt of the pass has reached."""
    of_pass = (
        attempts.c.sub_campaign_id == key.sub_campaign_id,
        attempts.c.day == key.day,
        attempts.c.pass_number == key.pass_number,
    )
    per_contact = (
        select(
            attempts.c.contact_id,
            func.bool_or(
                and_(
                    attempts.c.try_number == key.round - 1,
                    attempts.c.result.in_(sorted(RETRYABLE)),
                )
            ).label("retry"),
            func.bool_or(attempts.c.result.in_(sorted(ENDS_CONTACT))).label("ended"),
        )
        .where(*of_pass)
        .group_by(attempts.c.contact_id)
        .subquery("per_contact")
    )
    s = _selections
    return (
        select(*_round_columns(key), func.row_number().over(order_by=s.c.seq), s.c.contact_id)
        .select_from(s.join(per_contact, per_contact.c.contact_id == s.c.contact_id))
        .where(
            s.c.sub_campaign_id == key.sub_campaign_id,
            s.c.day == key.day,
            s.c.pass_number == key.pass_number,
            s.c.round == key.round - 1,
            per_contact.c.retry,
            not_(per_contact.c.ended),
        )
    )


async def _freeze(run: PassRun, key: PassKey, selection: Select) -> int | None:
    """Claim the round and store `selection` (its rows: the round's columns, seq,
    contact) in one transaction. The number selected; None: an earlier try froze it."""
    of_round = (
        _progress.c.sub_campaign_id == key.sub_campaign_id,
        _progress.c.day == key.day,
        _progress.c.pass_number == key.pass_number,
        _progress.c.round == key.round,
    )
    async with run.tools.engine.begin() as connection:
        claimed = await connection.execute(
            postgresql.insert(_progress)
            .values(
                sub_campaign_id=key.sub_campaign_id,
                day=key.day,
                pass_number=key.pass_number,
                round=key.round,
                started_at=run.clock.now(),
                selected=0,
                cursor=0,
                finished=False,
            )
            .on_conflict_do_nothing()
            .returning(_progress.c.round)
        )
        if claimed.first() is None:
            return None
        columns = ["sub_campaign_id", "day", "pass_number", "round", "seq", "contact_id"]
        inserted = await heartbeating(
            connection.execute(insert(_selections).from_select(columns, selection))
        )
        await connection.execute(
            _progress.update().where(*of_round).values(selected=inserted.rowcount)
        )
        return inserted.rowcount


def opening(run: PassRun, policy: ContactPolicy | None) -> ColumnElement | None:
    """When each contact's window opens on the pass's day, as a UTC instant (NULL: open
    all day), for ordering the selection; None when every contact opens alike.

    The opening is the later of the pass's window (when read on the contact's clock) and
    the policy's hours for the contact's state on the pass's channel.
    """
    params = run.params
    channel = params.definition.channel.value
    window = params.definition.window
    window_start = window.start if window is not None and window.zone == "contact" else None

    def start(hours: tuple[dt_time, dt_time] | None) -> dt_time | None:
        starts = [t for t in (hours[0] if hours else None, window_start) if t is not None]
        return max(starts, default=None)

    general = start(policy.hours_for(channel, None) if policy else None)
    by_state: dict[str, dt_time | None] = {}
    if policy is not None:
        for code in policy.states:
            if (opens := start(policy.hours_for(channel, code))) != general:
                by_state[code] = opens
    if general is None and not by_state:
        return None

    def local(at: dt_time | None) -> ColumnElement:
        if at is None:
            return null()
        return cast(literal(datetime.combine(params.day, at)), DateTime(timezone=False))

    local_open = local(general)
    if by_state:  # the state's code is a bound parameter, never spliced into the SQL
        state = func.upper(contacts.c.attributes.op("->>")("state"))
        local_open = case(
            *((state == code, local(at)) for code, at in by_state.items()), else_=local_open
        )
    return func.timezone(func.coalesce(contacts.c.timezone, params.campaign_timezone), local_open)


async def heartbeating(statement: Awaitable[_T]) -> _T:
    """Await a long statement (freezing a large selection) heartbeating meanwhile: a
    1,000,000-contact freeze outlasts the heartbeat timeout, which took it for a dead
    worker and started it over. Cancelled with the activity."""
    task = asyncio.ensure_future(statement)
    try:
        while True:
            done, _ = await asyncio.wait([task], timeout=HEARTBEAT_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    except asyncio.CancelledError:
        task.cancel()
        raise
