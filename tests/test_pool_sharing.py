"""Passes share a worker's connection pool: none holds a connection while it waits (issue 15,
item 5; issue 16: many sub-campaigns on one worker).

Six sub-campaigns run at once through the local carrier, whose outcomes take seconds,
on a worker whose pool lends two connections at most. A pass that held a connection
while its attempts waited for the carrier would keep the others from theirs until the
pool's wait timed out and their activities failed; each statement borrowing a connection
for itself, every pass waits its turn, and every history shows no failed attempt.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.database import create_engine
from csm.settings import Settings
from csm.testing.carrier import carrier_and_receiver
from csm.testing.histories import failed_activity_attempts
from tests.helpers import campaign_with_list
from worker import build_worker

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "reminder call"
channel = "voice"
template = "Hello $first_name, this is a payment reminder."
[passes.pacing]
concurrency = 10

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
[passes.pacing]
concurrency = 10
"""
ANY_HOURS = '[hours]\nvoice = "any"\nsms = "any"\nemail = "any"\n'
SUB_CAMPAIGNS = 6


async def test_more_passes_than_pooled_connections_all_finish_without_a_failed_attempt(
    client: Client, engine: AsyncEngine, settings: Settings, database_url: str
) -> None:
    campaigns = []
    for _ in range(SUB_CAMPAIGNS):
        campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=40)
        await set_policy(engine, ANY_HOURS, campaign=campaign)
        campaigns.append((campaign, list_name))
    scarce = create_engine(database_url, pool_size=1)  # two connections at most
    queue = f"pool-sharing-{uuid.uuid4().hex[:8]}"
    try:
        # the receiver stores callbacks through the session's engine; the passes share `scarce`
        async with (
            carrier_and_receiver(settings, engine, speed=0.03) as carrier,
            build_worker(client, carrier.settings, engine=scarce, task_queue=queue),
        ):
            launched = [
                await start_sub_campaign(
                    client, engine, campaign=campaign, list_name=list_name, task_queue=queue
                )
                for campaign, list_name in campaigns
            ]
            summaries = await asyncio.wait_for(
                asyncio.gather(*(one.handle.result() for one in launched)), 240
            )
    finally:
        await scarce.dispose()
    assert [summary.state for summary in summaries] == ["completed"] * SUB_CAMPAIGNS
    for one in launched:
        assert await failed_activity_attempts(one.handle) == 0, one.handle.id
    subs = [one.sub_campaign.id for one in launched]
    async with engine.connect() as connection:
        results = dict(
            (
                await connection.execute(
                    text(
                        "SELECT result, count(*) FROM attempts"
                        " WHERE sub_campaign_id = ANY(:subs) AND device_id <> 0 GROUP BY result"
                    ),
                    {"subs": subs},
                )
            ).all()
        )
        per_sub = (
            await connection.execute(
                text(
                    "SELECT count(DISTINCT sub_campaign_id) FROM attempts"
                    " WHERE sub_campaign_id = ANY(:subs) AND channel = 'sms'"
                ),
                {"subs": subs},
            )
        ).scalar()
    assert "unknown" not in results
    assert {"delivered_machine", "success"} <= set(results)
    assert per_sub == SUB_CAMPAIGNS  # every sub-campaign reached its second pass
