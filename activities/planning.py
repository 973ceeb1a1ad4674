"""The plan activity: what a sub-campaign does on one campaign day.

It reads the strategy in force (or the sub-campaign's own), decides which
passes are due today by `days_to_wait` and `allowed_days`, and resolves the
day's instants to UTC, so the workflow needs no time-zone database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import exists, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio import activity

from csm.campaigns import strategy_in_force
from csm.database import session_factory
from csm.plan import DayPlan, PlannedPass
from csm.schedule import campaign_day, day_bounds, pass_days, utc_offsets
from csm.strategy.model import StrategyDefinition
from csm.tables import Campaign, Contact, ListMember, SubCampaign


@dataclass
class PlanInput:
    sub_campaign_id: int
    as_of: datetime  # the workflow's now
    day: date | None = None  # None: the campaign day of `as_of`


@dataclass
class DayPlanResult:
    plan: DayPlan
    response_groups: dict[str, list[str]]
    final_groups: dict[str, str] = field(default_factory=dict)  # group name → final scope


class PlanningActivities:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    @activity.defn(name="plan_day")
    async def plan_day(self, params: PlanInput) -> DayPlanResult:
        async with session_factory(self.engine)() as session, session.begin():
            sub = await session.get(SubCampaign, params.sub_campaign_id)
            if sub is None:
                raise LookupError(f"sub-campaign {params.sub_campaign_id} does not exist")
            campaign = await session.get(Campaign, sub.campaign_id)
            assert campaign is not None
            zone = campaign.timezone
            day = params.day or campaign_day(params.as_of, zone)
            if sub.start_day is None:
                await session.exec(
                    update(SubCampaign)
                    .where(SubCampaign.id == sub.id, SubCampaign.start_day.is_(None))
                    .values(start_day=day)
                )
                sub.start_day = day
            if sub.strategy_override is not None:
                version = 0
                strategy = StrategyDefinition.model_validate(sub.strategy_override)
            else:
                version, strategy = await strategy_in_force(session, campaign.id, day)
            list_zones = (
                await session.exec(
                    select(Contact.timezone)
                    .distinct()
                    .join(ListMember, ListMember.contact_id == Contact.id)
                    .where(ListMember.list_id == sub.list_id, Contact.timezone.is_not(None))
                )
            ).all()
            has_contacts = (
                await session.exec(select(exists().where(ListMember.list_id == sub.list_id)))
            ).one()
        scheduled = pass_days(strategy.passes, sub.start_day)
        due = [
            PlannedPass(number=number, definition=definition)
            for number, (definition, when) in enumerate(
                zip(strategy.passes, scheduled, strict=True), start=1
            )
            if when == day
        ]
        later = [when for when in scheduled if when > day]
        offsets = utc_offsets(day, {zone, *list_zones, *_fixed_zones(strategy)})
        offsets["@campaign"] = offsets[zone]
        starts, ends = day_bounds(day, zone)
        next_day = min(later) if later else None
        plan = DayPlan(
            day=day,
            campaign_timezone=zone,
            strategy_version=version,
            day_starts_at=starts,
            day_ends_at=ends,
            zone_offsets=offsets,
            passes=due,
            next_day=next_day,
            next_day_starts_at=day_bounds(next_day, zone)[0] if next_day else None,
            list_has_contacts=bool(has_contacts),
        )
        return DayPlanResult(
            plan=plan,
            response_groups=strategy.groups(),
            final_groups={
                name: group.final
                for name, group in strategy.response_groups.items()
                if group.final is not None
            },
        )


def _fixed_zones(strategy: StrategyDefinition) -> set[str]:
    return {
        p.window.zone
        for p in strategy.passes
        if p.window is not None and p.window.zone not in ("contact", "campaign")
    }
