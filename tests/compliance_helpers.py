"""Helpers of the compliance tests: a carrier that watches for overlaps, passes run directly."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities, PassInput
from csm.channels import AttemptOutcome, AttemptRequest, Channels
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.plan import PassCounts
from csm.schedule import campaign_day
from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignRef
from csm.vocabulary import Channel


class WatchingCarrier:
    """The seeded simulator with a little latency, noting any account attempted twice at once."""

    def __init__(self, latency_seconds: float = 0.002):
        self.carrier = SimulatedCarrier(SimulatorConfig(seed=7))
        self.latency = latency_seconds
        self.in_flight: Counter[int] = Counter()
        self.overlaps: list[int] = []
        self.attempts = 0

    async def attempt(self, request: AttemptRequest) -> AttemptOutcome:
        if self.in_flight[request.contact_id]:
            self.overlaps.append(request.contact_id)
        self.in_flight[request.contact_id] += 1
        self.attempts += 1
        try:
            await asyncio.sleep(self.latency)
            return AttemptOutcome(self.carrier.outcome_for(request))
        finally:
            self.in_flight[request.contact_id] -= 1

    async def close(self) -> None:
        return None

    def channels(self) -> Channels:
        return Channels({channel: self for channel in (Channel.VOICE, Channel.SMS)})


async def attempts_per_account(engine: AsyncEngine, campaign_ids: list[int]) -> Counter[int]:
    """Counted attempts (device tried, any result but skipped / not_attempted) per account."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT contact_id, count(*) FROM attempts WHERE campaign_id = ANY(:c)"
                " AND device_id <> 0 AND result NOT IN ('skipped', 'not_attempted')"
                " GROUP BY contact_id"
            ),
            {"c": campaign_ids},
        )
        return Counter(dict(rows.all()))


async def skip_reasons(engine: AsyncEngine, campaign_ids: list[int]) -> Counter[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT skip_reason, count(*) FROM attempts WHERE campaign_id = ANY(:c)"
                " AND result = 'skipped' GROUP BY skip_reason"
            ),
            {"c": campaign_ids},
        )
        return Counter(dict(rows.all()))


async def run_pass(
    engine: AsyncEngine,
    channels: Channels,
    sub: SubCampaignRef,
    strategy: StrategyDefinition,
    pass_number: int,
    *,
    at: datetime | None = None,
) -> PassCounts:
    """Run one pass of `strategy` for the sub-campaign through the real pass activity."""
    activities = PassActivities(engine, channels)
    env = ActivityEnvironment()
    at = at or datetime.now(UTC)  # the environment's default is 1970
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=at)
    return await env.run(activities.run_pass, pass_input(sub, strategy, pass_number, at=at))


def pass_input(
    sub: SubCampaignRef, strategy: StrategyDefinition, pass_number: int, *, at: datetime | None
) -> PassInput:
    return PassInput(
        sub_campaign_id=sub.id,
        campaign_id=sub.campaign_id,
        list_id=sub.list_id,
        day=campaign_day(at or datetime.now(UTC), strategy.timezone),
        pass_number=pass_number,
        definition=strategy.passes[pass_number - 1],
        response_groups=strategy.groups(),
        final_groups={n: g.final for n, g in strategy.response_groups.items() if g.final},
        campaign_timezone=strategy.timezone,
    )


async def rows_of(engine: AsyncEngine, query: str, **params: object) -> list[tuple]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(query), params)]


async def first_attempt(engine: AsyncEngine, sub_id: int) -> None:
    """Wait (30 s at most) until the sub-campaign has recorded a ledger row."""
    async with asyncio.timeout(30):
        while True:
            if await rows_of(engine, "SELECT 1 FROM attempts WHERE sub_campaign_id = :s", s=sub_id):
                return
            await asyncio.sleep(0.05)
