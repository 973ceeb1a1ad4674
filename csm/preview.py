"""Strategy preview: how many contacts of a list each of today's passes would select now.

A manager checks a strategy against a list before launching it (are the
filters too narrow? does the SMS pass reach anyone?) and while a sub-campaign
runs (how many will the next pass take?). The counts come from the very query
the pass activity freezes its selection with (`csm.selection.selection_query`),
so a preview is what a pass would select if it started at this moment.

Without a sub-campaign nobody has attempts yet, so ledger fields (`attempts`,
`last_result`, `ever(...)`) see empty histories. With one, they see its ledger.
A `source = "previous"` pass is counted among the previous pass's frozen
selection when that pass has run today, else among what the previous pass
would select now; the first pass of the day is counted over the whole list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from csm.campaigns import campaign_today, get_campaign, strategy_in_force
from csm.database import session_factory
from csm.errors import CsmError
from csm.filters import check_filter
from csm.schedule import pass_days
from csm.selection import contacts, frozen_selection, selection_query
from csm.strategy.model import StrategyDefinition
from csm.strategy.values import did_you_mean, with_hint
from csm.subcampaigns import SubCampaignRef, find_sub_campaign
from csm.tables import ContactList, ListMember, PassProgress, SubCampaign


class PreviewError(CsmError):
    """A preview that cannot be computed: unknown list, conflicting options."""


@dataclass(frozen=True)
class PassPreview:
    """One pass of today's plan and how many contacts it would select now."""

    number: int  # the pass's position in the strategy: the ledger's pass number
    name: str
    channel: str
    source: str
    filter: str
    selected: int
    #: For `source = "previous"`: the pass whose selection narrowed the count, and how.
    among_pass: int | None = None
    among_frozen: bool = False

    def as_json(self) -> dict[str, Any]:
        """Every field under its own name: a preview's JSON is the record itself."""
        return asdict(self)


@dataclass(frozen=True)
class LaterPass:
    """A pass of the strategy that is not due today (days_to_wait, allowed_days)."""

    number: int
    name: str
    day: date


@dataclass(frozen=True)
class StrategyPreview:
    list_name: str
    list_size: int
    day: date
    timezone: str
    strategy_version: int | None  # None: a strategy file or a sub-campaign's own strategy
    sub_campaign: str | None
    passes: list[PassPreview]
    later: list[LaterPass]

    def as_json(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "list_size": self.list_size,
            "day": self.day.isoformat(),
            "timezone": self.timezone,
            "strategy_version": self.strategy_version,
            "sub_campaign": self.sub_campaign,
            "passes": [p.as_json() for p in self.passes],
            "later": [
                {"number": p.number, "name": p.name, "day": p.day.isoformat()} for p in self.later
            ],
        }


async def preview_strategy(
    engine: AsyncEngine,
    *,
    list_name: str | None = None,
    campaign: str | None = None,
    strategy: StrategyDefinition | None = None,
    sub_campaign: str | None = None,
    now: datetime | None = None,
) -> StrategyPreview:
    """Count what each pass due today would select from the list right now.

    Give the list and either a campaign (its strategy in force today) or a
    strategy; or a sub-campaign (its list, its strategy, its ledger). A
    strategy given with a sub-campaign replaces the sub-campaign's own.
    """
    ref: SubCampaignRef | None = None
    start_day: date | None = None
    override: dict[str, Any] | None = None
    if sub_campaign is not None:
        ref = await find_sub_campaign(engine, sub_campaign)
        if campaign is not None and campaign != ref.campaign:
            raise PreviewError(
                f"sub-campaign {ref.name!r} belongs to campaign {ref.campaign!r}, not {campaign!r}"
            )
        campaign = ref.campaign
        async with session_factory(engine)() as session:
            row = await session.get(SubCampaign, ref.id)
            assert row is not None
            start_day, override = row.start_day, row.strategy_override
    list_id, list_name = await _find_list(engine, list_name, ref)

    version: int | None = None
    if strategy is not None:
        definition = strategy
    elif override is not None:
        definition = StrategyDefinition.model_validate(override)
    elif campaign is not None:
        found = await get_campaign(engine, campaign)
        assert found.id is not None
        version, definition = await strategy_in_force(
            engine, found.id, campaign_today(found.timezone, now)
        )
    else:
        raise PreviewError("preview needs a campaign, a strategy file or a sub-campaign")

    day = campaign_today(definition.timezone, now)
    groups = definition.groups()
    scheduled = pass_days(definition.passes, start_day or day)
    passes: list[PassPreview] = []
    later: list[LaterPass] = []
    previous: tuple[int, Select] | None = None  # (number, selection query) of the pass before
    async with engine.connect() as connection:
        list_size = await connection.scalar(
            select(func.count()).where(col(ListMember.list_id) == list_id)
        )
        for number, (step, when) in enumerate(zip(definition.passes, scheduled, strict=True), 1):
            if when != day:
                if when > day:
                    later.append(LaterPass(number, step.name, when))
                continue
            among: ColumnElement[bool] | None = None
            among_pass: int | None = None
            frozen = False
            if step.source == "previous" and previous is not None:
                among_pass = previous[0]
                if ref is not None and await _has_frozen(connection, ref.id, day, among_pass):
                    frozen = True
                    among = contacts.c.id.in_(frozen_selection(ref.id, day, among_pass))
                else:
                    among = contacts.c.id.in_(previous[1])
            query = selection_query(
                list_id=list_id,
                node=check_filter(step.filter, groups),
                response_groups=groups,
                sub_campaign_id=ref.id if ref is not None else None,
                day=day,
                among=among,
            )
            selected = await connection.scalar(select(func.count()).select_from(query.subquery()))
            passes.append(
                PassPreview(
                    number=number,
                    name=step.name,
                    channel=step.channel.value,
                    source=step.source,
                    filter=step.filter,
                    selected=int(selected or 0),
                    among_pass=among_pass,
                    among_frozen=frozen,
                )
            )
            previous = (number, query)
    return StrategyPreview(
        list_name=list_name,
        list_size=int(list_size or 0),
        day=day,
        timezone=definition.timezone,
        strategy_version=version,
        sub_campaign=ref.name if ref is not None else None,
        passes=passes,
        later=later,
    )


async def _find_list(
    engine: AsyncEngine, list_name: str | None, ref: SubCampaignRef | None
) -> tuple[int, str]:
    """(id, name) of the list to count: the named one, or the sub-campaign's."""
    lists = ContactList.__table__
    async with engine.connect() as connection:
        if list_name is None:
            if ref is None:
                raise PreviewError("preview needs a list (--list) or a sub-campaign")
            name = await connection.scalar(select(lists.c.name).where(lists.c.id == ref.list_id))
            return ref.list_id, str(name)
        list_id = await connection.scalar(select(lists.c.id).where(lists.c.name == list_name))
        if list_id is None:
            names = (await connection.scalars(select(lists.c.name))).all()
            raise PreviewError(
                with_hint(f"unknown list {list_name!r}", did_you_mean(list_name, names))
            )
    if ref is not None and list_id != ref.list_id:
        raise PreviewError(
            f"sub-campaign {ref.name!r} runs another list than {list_name!r}; "
            "leave --list out to use its own"
        )
    return int(list_id), list_name


async def _has_frozen(
    connection: AsyncConnection, sub_campaign_id: int, day: date, pass_number: int
) -> bool:
    """Whether that pass froze its selection today (it started)."""
    progress = PassProgress.__table__
    found = await connection.scalar(
        select(progress.c.pass_number).where(
            progress.c.sub_campaign_id == sub_campaign_id,
            progress.c.day == day,
            progress.c.pass_number == pass_number,
            progress.c.round == 0,
        )
    )
    return found is not None
