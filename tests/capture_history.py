"""Capture a sub-campaign history for the Replayer test (run by hand after a deliberate,
compatible change of the workflow; commit the new file):

    python -m tests.capture_history tests/histories/subcampaign_three_passes.json
    python -m tests.capture_history tests/histories/subcampaign_sharded_pass.json sharded
    python -m tests.capture_history tests/histories/subcampaign_wait_notes.json notes
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from csm.compliance.store import set_policy
from csm.database import create_engine
from csm.devstack.temporal import temporal_binary, tuning_args
from csm.launch import start_sub_campaign
from csm.settings import Settings
from csm.testing.servers import fresh_database, smtp_sink
from tests.helpers import campaign_with_list
from tests.test_subcampaign_e2e import STRATEGY
from worker import build_worker

#: Waits that set a pass's note: a retry gap inside the pass activity (its `pass_note`
#: signals in the history) and an `after` delay in the workflow.
NOTES = """
timezone = "{zone}"

[[passes]]
name = "call twice"
channel = "voice"
retries = {{ per_device = 1, gap = "3s" }}

[[passes]]
name = "text later"
channel = "sms"
after = "2s"
"""
#: Hours open whatever the time of the capture (the synthetic contacts live in US zones).
ANY_HOURS = '[hours]\nvoice = "any"\nsms = "any"\n'


async def capture(target: Path, strategy: str = STRATEGY, policy: str = "") -> None:
    async with fresh_database(None) as url, smtp_sink() as (port, _):
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            dev_server_extra_args=tuning_args(),
            data_converter=pydantic_data_converter,
        )
        engine = create_engine(url)
        try:
            settings = Settings(
                database_url=url, smtp_host="127.0.0.1", smtp_port=port, _env_file=None
            )
            campaign, list_name = await campaign_with_list(engine, strategy, contacts=40)
            if policy:
                await set_policy(engine, policy, campaign=campaign)
            queue = f"capture-{uuid.uuid4().hex[:6]}"
            async with build_worker(env.client, settings, engine=engine, task_queue=queue):
                launched = await start_sub_campaign(
                    env.client, engine, campaign=campaign, list_name=list_name, task_queue=queue
                )
                await launched.handle.result()
            history = await launched.handle.fetch_history()
            target.write_text(history.to_json())
            print(f"wrote {target} ({len(history.events)} events)")
        finally:
            await engine.dispose()
            await env.shutdown()


if __name__ == "__main__":
    if sys.argv[2:] == ["sharded"]:  # a pass in 2 shards, then its retry round
        from tests.test_shards import STRATEGY as SHARDED

        asyncio.run(capture(Path(sys.argv[1]), SHARDED))
    elif sys.argv[2:] == ["notes"]:  # waits that set notes: a retry gap (signals), `after`
        from tests.test_subcampaign_days import midday_zone

        asyncio.run(capture(Path(sys.argv[1]), NOTES.format(zone=midday_zone()), ANY_HOURS))
    else:
        asyncio.run(capture(Path(sys.argv[1])))
