"""Caps across campaigns hold under concurrency: three sub-campaigns on shared accounts.

Three campaigns work the same 1,200 accounts at the same time, each with three
back-to-back voice passes (up to 18 attempts per account between them), under
Regulation F's 7-in-7 cap. Afterwards the ledger is counted: no account has
more than 7 attempts, the cap did bind (skips name it), and the carrier never
saw one account attempted twice at the same moment.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from tests.compliance_helpers import WatchingCarrier, attempts_per_account, skip_reasons
from tests.helpers import unique
from worker import build_worker

STRATEGY = """
timezone = "America/New_York"

[[passes]]
name = "morning"
channel = "voice"
pacing = { concurrency = 20 }

[[passes]]
name = "noon"
channel = "voice"
pacing = { concurrency = 20 }

[[passes]]
name = "afternoon"
channel = "voice"
pacing = { concurrency = 20 }
"""
#: Regulation F's cap at any hour, so the test does not depend on when it runs.
POLICY = """
[hours]
voice = "any"

[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]
"""


async def test_three_concurrent_sub_campaigns_never_overshoot_the_7_in_7_cap(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    list_name = unique("shared")
    await create_synthetic_list(engine, list_name, contacts=1200, seed=11)
    definition = load_strategy(STRATEGY)
    campaigns = [unique("capped") for _ in range(3)]
    for name in campaigns:
        await create_campaign(engine, name, definition, STRATEGY)
        await set_policy(engine, POLICY, campaign=name)
    carrier = WatchingCarrier()
    task_queue = f"caps-{uuid.uuid4().hex[:8]}"
    async with build_worker(
        client, settings, engine=engine, channels=carrier.channels(), task_queue=task_queue
    ):
        launched = await asyncio.gather(
            *(
                start_sub_campaign(
                    client, engine, campaign=name, list_name=list_name, task_queue=task_queue
                )
                for name in campaigns
            )
        )
        summaries = await asyncio.wait_for(
            asyncio.gather(*(one.handle.result() for one in launched)), 240
        )
    assert [s.state for s in summaries] == ["completed"] * 3
    campaign_ids = [one.sub_campaign.campaign_id for one in launched]
    per_account = await attempts_per_account(engine, campaign_ids)
    reasons = await skip_reasons(engine, campaign_ids)
    print(f"attempts {sum(per_account.values())}, skips {dict(reasons)}")
    assert len(per_account) > 1000  # all but the accounts without consent or a phone
    assert max(per_account.values()) <= 7, per_account.most_common(3)
    assert reasons["capped:reg_f_7_in_7"] > 0  # the cap did bind
    assert carrier.overlaps == []
    assert carrier.attempts == sum(per_account.values())
