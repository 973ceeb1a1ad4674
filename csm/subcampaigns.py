"""Sub-campaigns: a campaign run through one list, registered before its workflow starts."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from csm.campaigns import get_campaign
from csm.database import session_factory

# The reference and its lookup are plain SQL on asyncpg (csm.lookups), so `csm status`
# finds a sub-campaign without loading SQLAlchemy; re-exported here, where callers look.
from csm.lookups import SubCampaignError as SubCampaignError
from csm.lookups import SubCampaignRef as SubCampaignRef
from csm.lookups import find_sub_campaign as find_sub_campaign
from csm.names import line_problem
from csm.strategy.model import StrategyDefinition
from csm.tables import ContactList, SubCampaign


def workflow_id_for(campaign: str, sub_campaign: str) -> str:
    """A stable, readable workflow id: subcampaign-<campaign>-<sub-campaign>."""

    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"

    return f"subcampaign-{slug(campaign)}-{slug(sub_campaign)}"


#: The length of `sub_campaigns.name`.
MAX_NAME = 200


def _check_name(name: str, *, given: bool) -> None:
    """A sub-campaign name fits its column and is one line (it names a Temporal workflow)."""
    hint = "" if given else " (it is the list's name: pick another with --name)"
    if len(name) > MAX_NAME:
        raise SubCampaignError(f"sub-campaign names have at most {MAX_NAME} characters{hint}")
    if (problem := line_problem(name, "a sub-campaign name")) is not None:
        raise SubCampaignError(problem + hint)


async def register_sub_campaign(
    engine: AsyncEngine,
    *,
    campaign: str,
    list_name: str,
    name: str | None = None,
    strategy: StrategyDefinition | None = None,
) -> SubCampaignRef:
    """Create the sub-campaign row (name defaults to the list's; strategy to the campaign's).

    Registering the same campaign, list and name again returns the existing one,
    so a retried `csm start` is harmless.
    """
    async with session_factory(engine)() as session, session.begin():
        found = await get_campaign(session, campaign)
        contact_list = (
            await session.exec(select(ContactList).where(ContactList.name == list_name))
        ).first()
        if contact_list is None:
            raise SubCampaignError(f"unknown list {list_name!r}; import it with `csm lists import`")
        sub_name = name or contact_list.name
        _check_name(sub_name, given=name is not None)
        existing = (
            await session.exec(
                select(SubCampaign).where(
                    SubCampaign.campaign_id == found.id, SubCampaign.name == sub_name
                )
            )
        ).first()
        if existing is not None:
            if existing.list_id != contact_list.id:
                raise SubCampaignError(
                    f"sub-campaign {sub_name!r} of {campaign!r} runs another list; pick --name"
                )
            row = existing
        else:
            override: dict[str, Any] | None = (
                strategy.model_dump(mode="json") if strategy is not None else None
            )
            row = SubCampaign(
                campaign_id=found.id,
                list_id=contact_list.id,
                name=sub_name,
                workflow_id=workflow_id_for(campaign, sub_name),
                strategy_override=override,
            )
            session.add(row)
            await session.flush()
        return SubCampaignRef(
            id=row.id,
            campaign_id=found.id,
            campaign=found.name,
            list_id=contact_list.id,
            name=row.name,
            workflow_id=row.workflow_id,
        )
