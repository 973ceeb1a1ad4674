"""Campaigns with versioned strategies, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select

from csm.campaigns import (
    CampaignExistsError,
    StrategyVersionError,
    UnknownCampaignError,
    add_strategy_version,
    campaign_today,
    create_campaign,
    describe_campaign,
    get_campaign,
    list_campaigns,
    strategy_in_force,
)
from csm.database import session_factory
from csm.strategy import StrategyDefinition, load_strategy, load_strategy_file
from csm.tables import Campaign, ResponseGroup, Strategy

EXAMPLES = Path(__file__).parent.parent / "examples"


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def example(name: str) -> tuple[StrategyDefinition, str]:
    return load_strategy_file(EXAMPLES / name)


async def test_create_stores_version_1_effective_today_with_groups(engine: AsyncEngine) -> None:
    definition, source = example("payment_reminder.toml")
    name = unique("payments")
    campaign, version = await create_campaign(engine, name, definition, source)

    assert campaign.timezone == "America/Chicago"
    assert version.version == 1 and version.passes == 4
    assert version.effective_from == campaign_today("America/Chicago")
    assert campaign.id is not None
    async with session_factory(engine)() as session:
        stored = (
            await session.exec(select(Strategy).where(Strategy.campaign_id == campaign.id))
        ).one()
        groups = (
            await session.exec(select(ResponseGroup).where(ResponseGroup.strategy_id == stored.id))
        ).all()
    assert stored.source == source
    assert StrategyDefinition.model_validate(stored.definition) == definition
    assert {g.name: (g.codes, g.final) for g in groups} == {
        name: (list(group.codes), group.final) for name, group in definition.response_groups.items()
    }
    assert (await get_campaign(engine, name)).id == campaign.id


async def test_new_version_takes_effect_the_next_campaign_day(engine: AsyncEngine) -> None:
    first, first_source = example("payment_reminder.toml")
    second = load_strategy(
        'timezone = "America/Chicago"\n[[passes]]\nname = "only voice"\nchannel = "voice"\n'
    )
    name = unique("versions")
    campaign, _ = await create_campaign(engine, name, first, first_source)
    assert campaign.id is not None
    added = await add_strategy_version(engine, name, second, "second")

    today = campaign_today(campaign.timezone)
    assert added.version == 2 and added.effective_from == today + timedelta(days=1)
    assert await strategy_in_force(engine, campaign.id, today) == (1, first)
    assert await strategy_in_force(engine, campaign.id, today + timedelta(days=1)) == (2, second)
    assert (await strategy_in_force(engine, campaign.id, today + timedelta(days=30)))[0] == 2

    with pytest.raises(StrategyVersionError, match="no strategy in force"):
        await strategy_in_force(engine, campaign.id, today - timedelta(days=1))


async def test_a_later_version_for_the_same_day_supersedes(engine: AsyncEngine) -> None:
    definition, source = example("appointment_reminder.toml")
    name = unique("supersede")
    campaign, _ = await create_campaign(engine, name, definition, source)
    assert campaign.id is not None
    await add_strategy_version(engine, name, definition, source)
    third = await add_strategy_version(engine, name, definition, source)
    assert third.version == 3
    tomorrow = campaign_today(campaign.timezone) + timedelta(days=1)
    assert (await strategy_in_force(engine, campaign.id, tomorrow))[0] == 3

    details = await describe_campaign(engine, name)
    assert [(v.version, v.effective_from) for v in details.versions] == [
        (1, tomorrow - timedelta(days=1)),
        (2, tomorrow),
        (3, tomorrow),
    ]
    assert details.version_in_force == 1 and details.definition == definition
    assert details.as_json()["strategy"]["passes"][0]["name"] == "text reminder"


async def test_campaign_days_are_in_the_campaigns_zone(engine: AsyncEngine) -> None:
    # 03:30 UTC on 1 March is still 28 February in Chicago, already 1 March in Tokyo.
    now = datetime(2031, 3, 1, 3, 30, tzinfo=UTC)
    chicago = load_strategy('timezone = "America/Chicago"\n[[passes]]\nname="a"\nchannel="sms"\n')
    tokyo = load_strategy('timezone = "Asia/Tokyo"\n[[passes]]\nname="a"\nchannel="sms"\n')
    _, in_chicago = await create_campaign(engine, unique("chicago"), chicago, "", now=now)
    name = unique("tokyo")
    _, in_tokyo = await create_campaign(engine, name, tokyo, "", now=now)
    assert in_chicago.effective_from == date(2031, 2, 28)
    assert in_tokyo.effective_from == date(2031, 3, 1)
    assert (await add_strategy_version(engine, name, tokyo, "", now=now)).effective_from == date(
        2031, 3, 2
    )


async def test_versions_added_at_once_get_distinct_numbers(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = unique("concurrent")
    await create_campaign(engine, name, definition, source)
    added = await asyncio.gather(
        *(add_strategy_version(engine, name, definition, source) for _ in range(4))
    )
    assert sorted(v.version for v in added) == [2, 3, 4, 5]


async def test_duplicate_name_is_a_clear_error_and_writes_nothing(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = unique("twice")
    await create_campaign(engine, name, definition, source)
    with pytest.raises(CampaignExistsError, match=f"campaign '{name}' exists already"):
        await create_campaign(engine, name, definition, source)
    async with session_factory(engine)() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(Strategy)
                .join(Campaign, col(Campaign.id) == col(Strategy.campaign_id))
                .where(Campaign.name == name)
            )
        ).one()
    assert count == 1


async def test_creating_twice_at_once_creates_one(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = unique("race")
    results = await asyncio.gather(
        *(create_campaign(engine, name, definition, source) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, CampaignExistsError) for r in results if isinstance(r, BaseException))


async def test_a_new_version_keeps_the_campaigns_zone(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = unique("zone")
    await create_campaign(engine, name, definition, source)
    moved = definition.model_copy(update={"timezone": "Europe/Paris"})
    with pytest.raises(StrategyVersionError, match="keeps its time zone"):
        await add_strategy_version(engine, name, moved, source)


async def test_unknown_campaign_suggests_the_closest_name(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = f"recovery {uuid.uuid4().hex[:6]} east"
    await create_campaign(engine, name, definition, source)
    with pytest.raises(UnknownCampaignError, match=f"did you mean '{name}'"):
        await get_campaign(engine, name.replace("east", "eats"))
    with pytest.raises(UnknownCampaignError, match="unknown campaign 'nothing like it at all'"):
        await add_strategy_version(engine, "nothing like it at all", definition, source)


async def test_list_shows_versions_in_force(engine: AsyncEngine) -> None:
    definition, source = example("collections_under_caps.toml")
    name = unique("listed")
    await create_campaign(engine, name, definition, source)
    await add_strategy_version(engine, name, definition, source)
    (summary,) = [s for s in await list_campaigns(engine) if s.name == name]
    assert summary.timezone == "America/Chicago"
    assert summary.versions == 2 and summary.version_in_force == 1


async def test_functions_join_a_callers_session(engine: AsyncEngine) -> None:
    definition, source = example("recovery.toml")
    name = unique("session")
    async with session_factory(engine)() as session:
        campaign, _ = await create_campaign(session, name, definition, source)
        await session.rollback()  # the caller owns the transaction: nothing stays
    with pytest.raises(UnknownCampaignError):
        await get_campaign(engine, name)
    async with session_factory(engine)() as session, session.begin():
        campaign, _ = await create_campaign(session, name, definition, source)
    assert campaign.id is not None
    assert (await strategy_in_force(engine, campaign.id, campaign_today(campaign.timezone)))[0] == 1
