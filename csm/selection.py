"""Which contacts of a list a pass's filter selects: one set-based query.

The filter's fields are read from the contact row, its devices and a
per-contact summary of the attempt ledger for the sub-campaign (attempts,
attempts today, latest result). The same query serves the strategy preview
and the pass activity, so what a manager previews is what a pass selects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    exists,
    false,
    func,
    literal,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from csm.filters.ast import Node
from csm.filters.compile import FilterScope, compile_filter
from csm.tables import Attempt, Contact, Device, ListMember, PassSelection
from csm.vocabulary import NOT_ATTEMPTED_CODES, DeviceKind

contacts = Contact.__table__
devices = Device.__table__
members = ListMember.__table__
attempts = Attempt.__table__


selections = PassSelection.__table__


def frozen_selection(sub_campaign_id: int, day: date, pass_number: int) -> Select:
    """The contact ids a pass selected when it started (round 0: not its retry rounds).

    A pass with `source = "previous"` chooses among these.
    """
    return select(selections.c.contact_id).where(
        selections.c.sub_campaign_id == sub_campaign_id,
        selections.c.day == day,
        selections.c.pass_number == pass_number,
        selections.c.round == 0,
    )


def _has_device(kind: DeviceKind) -> ColumnElement[bool]:
    return exists().where(devices.c.contact_id == contacts.c.id, devices.c.kind == kind.value)


def ledger_summary(sub_campaign_id: int, day: date):
    """Per contact: attempts, attempts today and latest result in this sub-campaign."""
    real = attempts.c.result.not_in(sorted(NOT_ATTEMPTED_CODES))
    return (
        select(
            attempts.c.contact_id,
            func.count().filter(real).label("attempts"),
            func.count().filter(and_(real, attempts.c.day == day)).label("attempts_today"),
            func.array_agg(aggregate_order_by(attempts.c.result, attempts.c.id.desc()))[1].label(
                "last_result"
            ),
        )
        .where(attempts.c.sub_campaign_id == sub_campaign_id)
        .group_by(attempts.c.contact_id)
        .subquery("ledger")
    )


def selection_query(
    *,
    list_id: int,
    node: Node,
    response_groups: Mapping[str, Sequence[str]],
    sub_campaign_id: int | None = None,
    day: date | None = None,
    among: ColumnElement[bool] | None = None,
) -> Select:
    """SELECT contacts.id of the list's contacts that the checked filter `node` selects.

    Without a sub-campaign (a preview before launch) nobody has attempts yet.
    `among` narrows further (e.g. to the previous pass's selection).
    """
    query = select(contacts.c.id).join(members, members.c.contact_id == contacts.c.id)
    if sub_campaign_id is not None:
        summary = ledger_summary(sub_campaign_id, day or date.today())
        query = query.outerjoin(summary, summary.c.contact_id == contacts.c.id)
        counted = {
            "attempts": func.coalesce(summary.c.attempts, 0),
            "attempts_today": func.coalesce(summary.c.attempts_today, 0),
            "last_result": summary.c.last_result,
        }

        def ever(codes: Sequence[str]) -> ColumnElement[bool]:
            return exists().where(
                attempts.c.sub_campaign_id == sub_campaign_id,
                attempts.c.contact_id == contacts.c.id,
                attempts.c.result.in_(list(codes)),
            )
    else:
        counted = {
            "attempts": literal(0, Integer),
            "attempts_today": literal(0, Integer),
            "last_result": null().cast(String),
        }

        def ever(codes: Sequence[str]) -> ColumnElement[bool]:
            return false()

    scope = FilterScope(
        fields={
            **counted,
            "timezone": contacts.c.timezone,
            "postal_code": contacts.c.postal_code,
            "account": contacts.c.account_key,
            "has_wireless": _has_device(DeviceKind.WIRELESS),
            "has_landline": _has_device(DeviceKind.LANDLINE),
            "has_email": _has_device(DeviceKind.EMAIL),
            "consent.voice": contacts.c.consent_voice,
            "consent.sms": contacts.c.consent_sms,
            "consent.email": contacts.c.consent_email,
        },
        attributes=contacts.c.attributes,
        ever=ever,
    )
    condition = compile_filter(node, scope, response_groups)
    query = query.where(members.c.list_id == list_id, condition)
    if among is not None:
        query = query.where(among)
    return query
