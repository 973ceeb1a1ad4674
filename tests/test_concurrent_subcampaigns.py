"""Ten sub-campaigns at once over one list, under caps, on one worker (issue 16's proof).

Each sub-campaign is of a campaign of its own (voice on both devices, a retry of the
no-answers, texts to the unreached) over the same 40 accounts, under Regulation F's
7-in-7 voice cap and 2 texts a device a day: ten campaigns would make up to 40 voice
attempts an account without the caps. The worker's pool lends 4 connections, so the
passes take turns for them. Every history shows no failed activity attempt, the ledger
has no `unknown`, the caps held (counted from the ledger) and did bite.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.database import create_engine
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from csm.testing.histories import activity_failures
from csm.testing.ledger import over_caps
from tests.helpers import unique
from worker import build_worker

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "voice, both devices"
channel = "voice"
devices = ["wireless", "landline"]
pacing = { concurrency = 4 }

[[passes]]
name = "retry the no-answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
after = "1s"
pacing = { concurrency = 4 }

[[passes]]
name = "text the unreached"
channel = "sms"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
pacing = { concurrency = 4 }
"""
POLICY = """
[hours]
voice = "any"
sms = "any"
email = "any"

[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]

[[caps]]
name = "sms_2_a_day"
max = 2
channels = ["sms"]
per = "device"
"""
SUB_CAMPAIGNS = 10


async def test_ten_sub_campaigns_over_shared_accounts_hold_the_caps_without_a_failure(
    client: Client, engine: AsyncEngine, settings: Settings, database_url: str
) -> None:
    list_name = unique("shared")
    await create_synthetic_list(engine, list_name, contacts=40, seed=41)
    campaigns = [unique("concurrent") for _ in range(SUB_CAMPAIGNS)]
    for campaign in campaigns:
        await create_campaign(engine, campaign, load_strategy(STRATEGY), STRATEGY)
        await set_policy(engine, POLICY, campaign=campaign)
    scarce = create_engine(database_url, connections=4)
    queue = f"concurrent-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(client, settings, engine=scarce, task_queue=queue):
            launched = [
                await start_sub_campaign(
                    client, engine, campaign=campaign, list_name=list_name, task_queue=queue
                )
                for campaign in campaigns
            ]
            summaries = await asyncio.wait_for(
                asyncio.gather(*(one.handle.result() for one in launched)), 240
            )
    finally:
        await scarce.dispose()
    assert [summary.state for summary in summaries] == ["completed"] * SUB_CAMPAIGNS
    for one in launched:
        assert await activity_failures(one.handle) == [], one.handle.id
    subs = [one.sub_campaign.id for one in launched]
    async with engine.connect() as connection:
        results = dict(
            (
                await connection.execute(
                    text(
                        "SELECT coalesce(skip_reason, result), count(*) FROM attempts"
                        " WHERE sub_campaign_id = ANY(:subs) GROUP BY 1"
                    ),
                    {"subs": subs},
                )
            ).all()
        )
    assert "unknown" not in results
    assert await over_caps(engine, list_name) == (0, 0)
    # the caps did bite: without them ten campaigns go well past 7 calls an account
    assert results.get("capped:reg_f_7_in_7", 0) > 0, results
    assert results.get("capped:sms_2_a_day", 0) > 0, results
