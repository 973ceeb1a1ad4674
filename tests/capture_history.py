"""Capture a sub-campaign history for the Replayer test (run by hand after a deliberate,
compatible change of the workflow; commit the new file):

    python -m tests.capture_history tests/histories/subcampaign_three_passes.json
    python -m tests.capture_history tests/histories/subcampaign_sharded_pass.json sharded
    python -m tests.capture_history tests/histories/subcampaign_early_messages.json early
    python -m tests.capture_history tests/histories/subcampaign_wait_notes.json notes

`early` sends messages before any worker runs (so before the day's plan exists): an
amend signal, pause, resume and an amend update, which the workflow holds or logs.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from csm.amendments import Amendment, SetFilter
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.database import create_engine
from csm.devstack.temporal import temporal_binary, tuning_args
from csm.settings import Settings
from csm.testing.servers import fresh_database, smtp_sink
from tests.conftest import BASELINE_POLICY
from tests.helpers import campaign_with_list
from tests.test_subcampaign_e2e import STRATEGY
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

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


async def early_messages(handle: WorkflowHandle) -> asyncio.Task:
    """Messages sent before the day's plan exists; the amend update's task (still in flight)."""
    await handle.signal("amend", {"operations": [{"op": "skip", "target": 2}], "reason": "early"})
    await handle.signal(SubCampaignWorkflow.pause)
    await handle.signal(SubCampaignWorkflow.resume)
    update = asyncio.create_task(
        handle.execute_update(
            SubCampaignWorkflow.amend_update,
            Amendment(operations=[SetFilter(target=3, filter="attempts = 0")]),
        )
    )
    await asyncio.sleep(1)
    return update


async def capture(
    target: Path, strategy: str = STRATEGY, policy: str = "", early: bool = False
) -> None:
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
            # The suite's policy (no calling hours), so a capture runs at any hour of the day.
            await set_policy(engine, BASELINE_POLICY, author="capture_history")
            campaign, list_name = await campaign_with_list(engine, strategy, contacts=40)
            if policy:
                await set_policy(engine, policy, campaign=campaign)
            queue = f"capture-{uuid.uuid4().hex[:6]}"
            launched = await start_sub_campaign(
                env.client, engine, campaign=campaign, list_name=list_name, task_queue=queue
            )
            update = await early_messages(launched.handle) if early else None
            async with build_worker(env.client, settings, engine=engine, task_queue=queue):
                await launched.handle.result()
                if update is not None:
                    await update
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
    elif sys.argv[2:] == ["early"]:
        asyncio.run(capture(Path(sys.argv[1]), early=True))
    elif sys.argv[2:] == ["notes"]:  # waits that set notes: a retry gap (signals), `after`
        from tests.test_subcampaign_days import midday_zone

        asyncio.run(capture(Path(sys.argv[1]), NOTES.format(zone=midday_zone()), ANY_HOURS))
    else:
        asyncio.run(capture(Path(sys.argv[1])))
