"""Sub-campaigns: a campaign run through one list, registered before its workflow starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from csm.campaigns import get_campaign
from csm.database import session_factory
from csm.errors import CsmError
from csm.names import line_problem
from csm.strategy.model import StrategyDefinition
from csm.tables import Campaign, ContactList, SubCampaign


class SubCampaignError(CsmError):
    """A sub-campaign that cannot be registered or found."""


@dataclass(frozen=True)
class SubCampaignRef:
    """What a workflow needs to find its sub-campaign: ids and names only."""

    id: int
    campaign_id: int
    campaign: str
    list_id: int
    name: str
    workflow_id: str


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


async def find_sub_campaign(engine: AsyncEngine, reference: str) -> SubCampaignRef:
    """A sub-campaign by workflow id, or by name when that name is unique."""
    async with session_factory(engine)() as session:
        rows = (
            await session.exec(
                select(SubCampaign).where(
                    (SubCampaign.workflow_id == reference) | (SubCampaign.name == reference)
                )
            )
        ).all()
        if not rows:
            raise SubCampaignError(f"unknown sub-campaign {reference!r}")
        if len(rows) > 1:
            ids = ", ".join(r.workflow_id for r in rows)
            raise SubCampaignError(f"{reference!r} names several sub-campaigns: use one of {ids}")
        row = rows[0]
        campaign = await session.get(Campaign, row.campaign_id)
        assert campaign is not None
        return SubCampaignRef(
            id=row.id,
            campaign_id=row.campaign_id,
            campaign=campaign.name,
            list_id=row.list_id,
            name=row.name,
            workflow_id=row.workflow_id,
        )
