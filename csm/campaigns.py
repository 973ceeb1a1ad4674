"""Campaigns and their versioned defined strategies, kept in PostgreSQL.

A campaign's defined strategy changes by adding a version, never by editing
one: a version takes effect from the next campaign day, so a day that has
started keeps the plan it started with (same-day changes are amendments of a
running sub-campaign instead). Campaign days are dates in the campaign's own
time zone. Activities call `strategy_in_force`; the CLI is a thin layer over
the functions here.

Write functions take an AsyncEngine (they run and commit their own
transaction) or an AsyncSession (they flush; the caller commits or rolls back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csm.database import session_factory
from csm.errors import CsmError
from csm.names import line_problem
from csm.strategy.model import StrategyDefinition
from csm.strategy.values import did_you_mean, with_hint
from csm.tables import Campaign, ResponseGroup, Strategy

SessionOrEngine = AsyncSession | AsyncEngine
NAME_MAX = 200
#: A campaign's priority is an int column; keep it well inside the range.
PRIORITY_LIMIT = 1_000_000


class UnknownCampaignError(CsmError):
    """No campaign has that name."""


class CampaignExistsError(CsmError):
    """A campaign with that name exists already (names are unique)."""


class CampaignNameError(CsmError):
    """A campaign name that cannot be used (empty or too long)."""


class CampaignPriorityError(CsmError):
    """A priority outside the range a campaign's priority may take."""


class StrategyVersionError(CsmError):
    """A strategy version that cannot be added to, or read for, a campaign."""


@dataclass(frozen=True)
class StrategyVersion:
    """One stored version of a campaign's defined strategy (no definition: cheap to list)."""

    version: int
    effective_from: date
    passes: int
    created_at: datetime


@dataclass(frozen=True)
class CampaignSummary:
    id: int
    name: str
    timezone: str
    versions: int
    version_in_force: int | None  # on `today`, the campaign's current date
    today: date
    priority: int = 0  # higher goes first on accounts shared under a cap


@dataclass(frozen=True)
class CampaignDetails:
    id: int
    name: str
    timezone: str
    today: date
    versions: list[StrategyVersion]
    version_in_force: int | None
    definition: StrategyDefinition | None  # the version in force today
    priority: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone,
            "priority": self.priority,
            "today": self.today.isoformat(),
            "versions": [
                {
                    "version": v.version,
                    "effective_from": v.effective_from.isoformat(),
                    "passes": v.passes,
                    "created_at": v.created_at.isoformat(),
                }
                for v in self.versions
            ],
            "version_in_force": self.version_in_force,
            "strategy": self.definition.model_dump(mode="json") if self.definition else None,
        }


def campaign_today(timezone: str, now: datetime | None = None) -> date:
    """The campaign day it is now in `timezone` (`now` must be timezone-aware)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()


def next_campaign_day(timezone: str, now: datetime | None = None) -> date:
    """The day a new strategy version takes effect: tomorrow, in the campaign's zone."""
    return campaign_today(timezone, now) + timedelta(days=1)


# --- sessions -----------------------------------------------------------------


@asynccontextmanager
async def _reading(db: SessionOrEngine) -> AsyncIterator[AsyncSession]:
    if isinstance(db, AsyncEngine):
        async with session_factory(db)() as session:
            yield session
    else:
        yield db


@asynccontextmanager
async def _writing(db: SessionOrEngine) -> AsyncIterator[AsyncSession]:
    """Our own transaction for an engine; the caller's for a session (flushed, not committed)."""
    if isinstance(db, AsyncEngine):
        async with session_factory(db)() as session, session.begin():
            yield session
    else:
        yield db
        await db.flush()


# --- reading ------------------------------------------------------------------


async def get_campaign(db: SessionOrEngine, name: str) -> Campaign:
    """The campaign called `name`, or UnknownCampaignError naming the closest one."""
    async with _reading(db) as session:
        found = (await session.exec(select(Campaign).where(Campaign.name == name))).first()
        if found is not None:
            return found
        names = (await session.exec(select(Campaign.name))).all()
    raise UnknownCampaignError(with_hint(f"unknown campaign {name!r}", did_you_mean(name, names)))


async def strategy_in_force(
    db: SessionOrEngine, campaign_id: int, day: date
) -> tuple[int, StrategyDefinition]:
    """(version, definition) of the strategy in force on campaign day `day`.

    That is the highest version effective on or before `day`, so a version
    added twice for the same next day supersedes the earlier one. `day` is a
    date in the campaign's time zone.
    """
    async with _reading(db) as session:
        row = (
            await session.exec(
                select(Strategy.version, Strategy.definition)
                .where(Strategy.campaign_id == campaign_id, Strategy.effective_from <= day)
                .order_by(col(Strategy.version).desc())
                .limit(1)
            )
        ).first()
    if row is None:
        raise StrategyVersionError(
            f"campaign {campaign_id} has no strategy in force on {day.isoformat()}"
        )
    version, definition = row
    return version, _definition(campaign_id, version, definition)


def _definition(campaign_id: int, version: int, stored: dict[str, Any]) -> StrategyDefinition:
    try:
        return StrategyDefinition.model_validate(stored)
    except ValidationError as err:
        # Validation rules only tighten with care; say which version to re-add if they did.
        raise StrategyVersionError(
            f"stored strategy version {version} of campaign {campaign_id} no longer validates "
            f"({err.error_count()} problems): add a corrected version"
        ) from err


async def strategy_versions(db: SessionOrEngine, campaign_id: int) -> list[StrategyVersion]:
    """Every version of a campaign's strategy, oldest first."""
    passes = func.jsonb_array_length(col(Strategy.definition)["passes"])
    async with _reading(db) as session:
        rows = (
            await session.exec(
                select(Strategy.version, Strategy.effective_from, passes, Strategy.created_at)
                .where(Strategy.campaign_id == campaign_id)
                .order_by(col(Strategy.version))
            )
        ).all()
    return [StrategyVersion(*row) for row in rows]


def version_in_force(versions: list[StrategyVersion], day: date) -> int | None:
    """The version number `strategy_in_force` would pick on `day`, from a version listing."""
    eligible = [v.version for v in versions if v.effective_from <= day]
    return max(eligible) if eligible else None


async def list_campaigns(
    db: SessionOrEngine, *, now: datetime | None = None
) -> list[CampaignSummary]:
    """All campaigns by name, each with its version count and the version in force today."""
    async with _reading(db) as session:
        campaigns = (await session.exec(select(Campaign).order_by(col(Campaign.name)))).all()
        summaries = []
        for campaign in campaigns:
            assert campaign.id is not None
            versions = await strategy_versions(session, campaign.id)
            today = campaign_today(campaign.timezone, now)
            summaries.append(
                CampaignSummary(
                    id=campaign.id,
                    name=campaign.name,
                    timezone=campaign.timezone,
                    versions=len(versions),
                    version_in_force=version_in_force(versions, today),
                    today=today,
                    priority=campaign.priority,
                )
            )
    return summaries


async def describe_campaign(
    db: SessionOrEngine, name: str, *, now: datetime | None = None
) -> CampaignDetails:
    """A campaign with its versions and the strategy in force today (for `campaigns show`)."""
    async with _reading(db) as session:
        campaign = await get_campaign(session, name)
        assert campaign.id is not None
        versions = await strategy_versions(session, campaign.id)
        today = campaign_today(campaign.timezone, now)
        in_force: int | None = None
        definition: StrategyDefinition | None = None
        if version_in_force(versions, today) is not None:
            in_force, definition = await strategy_in_force(session, campaign.id, today)
    return CampaignDetails(
        id=campaign.id,
        name=campaign.name,
        timezone=campaign.timezone,
        today=today,
        versions=versions,
        version_in_force=in_force,
        definition=definition,
        priority=campaign.priority,
    )


# --- writing ------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CampaignNameError("a campaign needs a name")
    if len(name) > NAME_MAX:
        raise CampaignNameError(f"campaign names have at most {NAME_MAX} characters")
    if (problem := line_problem(name, "a campaign name")) is not None:
        raise CampaignNameError(problem)
    return name


def _check_priority(priority: int) -> int:
    if not -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT:
        raise CampaignPriorityError(
            f"a campaign's priority is a whole number from {-PRIORITY_LIMIT} to {PRIORITY_LIMIT}"
            f", got {priority}"
        )
    return priority


async def create_campaign(
    db: SessionOrEngine,
    name: str,
    definition: StrategyDefinition,
    source: str,
    *,
    priority: int = 0,
    now: datetime | None = None,
) -> tuple[Campaign, StrategyVersion]:
    """Create a campaign in the strategy's zone, with strategy version 1 effective today.

    Campaign, version and response groups are written in one transaction, so
    a failure leaves nothing behind. `source` is the strategy file as written.
    `priority` decides which campaign gets an account first when caps are shared
    (higher goes first; see csm.compliance.gate).
    """
    name = _check_name(name)
    priority = _check_priority(priority)
    try:
        async with _writing(db) as session:
            taken = await session.exec(select(Campaign.id).where(Campaign.name == name))
            if taken.first() is not None:
                raise CampaignExistsError(f"campaign {name!r} exists already")
            campaign = Campaign(name=name, timezone=definition.timezone, priority=priority)
            session.add(campaign)
            await session.flush()
            version = await _add_version(
                session, campaign, definition, source, campaign_today(campaign.timezone, now), 1
            )
    except IntegrityError as err:  # created concurrently between our check and insert
        raise CampaignExistsError(f"campaign {name!r} exists already") from err
    return campaign, version


async def set_campaign_priority(db: SessionOrEngine, name: str, priority: int) -> Campaign:
    """Change campaign `name`'s priority; running passes use it from their next batch."""
    priority = _check_priority(priority)
    async with _writing(db) as session:
        campaign = await get_campaign(session, name)
        campaign.priority = priority
        session.add(campaign)
    return campaign


async def add_strategy_version(
    db: SessionOrEngine,
    name: str,
    definition: StrategyDefinition,
    source: str,
    *,
    now: datetime | None = None,
) -> StrategyVersion:
    """Add the next strategy version of campaign `name`, effective from the next campaign day.

    A version added again for the same day supersedes the earlier one. The
    campaign row is locked so concurrent additions get distinct version numbers.
    """
    async with _writing(db) as session:
        campaign = await get_campaign(session, name)
        locked = await session.exec(
            select(Campaign).where(Campaign.id == campaign.id).with_for_update()
        )
        campaign = locked.one()
        if definition.timezone != campaign.timezone:
            raise StrategyVersionError(
                f"campaign {name!r} runs on {campaign.timezone} but the strategy says "
                f"timezone = {definition.timezone!r}: a campaign keeps its time zone"
            )
        latest = await session.exec(
            select(func.max(Strategy.version)).where(Strategy.campaign_id == campaign.id)
        )
        number = (latest.one() or 0) + 1
        return await _add_version(
            session, campaign, definition, source, next_campaign_day(campaign.timezone, now), number
        )


async def _add_version(
    session: AsyncSession,
    campaign: Campaign,
    definition: StrategyDefinition,
    source: str,
    effective_from: date,
    number: int,
) -> StrategyVersion:
    assert campaign.id is not None
    row = Strategy(
        campaign_id=campaign.id,
        version=number,
        effective_from=effective_from,
        source=source,
        definition=definition.model_dump(mode="json"),
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    for group_name, group in definition.response_groups.items():
        session.add(
            ResponseGroup(
                campaign_id=campaign.id,
                strategy_id=row.id,
                name=group_name,
                codes=list(group.codes),
                final=group.final,
            )
        )
    await session.flush()
    return StrategyVersion(number, effective_from, len(definition.passes), row.created_at)
