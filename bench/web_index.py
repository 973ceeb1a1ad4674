"""What the web index's states cost: one visibility listing against a describe per row.

Starts a local Temporal dev server (the `temporal` binary of the venv) with csm's
search attributes, starts N sub-campaign workflows on a task queue no worker
serves (visibility lists them all the same), then times the states of all N as
the index reads them now (csm.web.data.states_of: one `list_workflows` call) and
as it did before (one `describe` per row, one after another).

    python bench/web_index.py --rows 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from csm.settings import SEARCH_ATTRIBUTES
from csm.states import state_key, sub_campaign_state
from csm.web.data import states_of


async def timed(work, repeats: int) -> tuple[float, float]:
    """(p50, max) milliseconds of `work()` over `repeats` runs after one warm-up."""
    await work()
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        await work()
        runs.append((time.perf_counter() - began) * 1000)
    return statistics.median(runs), max(runs)


async def described(client: Client, workflow_ids: list[str]) -> dict[str, str]:
    """The states as the index read them before: a describe per row, in turn."""
    states = {}
    for workflow_id in workflow_ids:
        description = await client.get_workflow_handle(workflow_id).describe()
        recorded = description.typed_search_attributes.get(state_key())
        states[workflow_id] = sub_campaign_state(description.status, recorded)
    return states


async def run(rows: int, repeats: int) -> None:
    binary = os.path.join(os.path.dirname(sys.executable), "temporal")
    attributes = [SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES]
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary, search_attributes=attributes
    ) as env:
        client = env.client
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        ids = [f"subcampaign-bench-{n}" for n in range(rows)]
        for workflow_id in ids:
            await client.start_workflow("SubCampaign", id=workflow_id, task_queue=queue)
        for _ in range(150):  # visibility catches up with the starts
            if len(await states_of(client, ids)) == rows:
                break
            await asyncio.sleep(0.2)
        assert await states_of(client, ids) == await described(client, ids)
        listing = await timed(lambda: states_of(client, ids), repeats)
        one_by_one = await timed(lambda: described(client, ids), repeats)
    print(f"{rows} sub-campaigns, {repeats} runs each (after a warm-up)")
    for label, (p50, worst) in (("one listing (now)", listing), ("describes (before)", one_by_one)):
        print(f"  {label:20} p50 {p50:8.1f} ms, max {worst:8.1f} ms")
    print(f"  before / now (p50)   {one_by_one[0] / listing[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200, help="sub-campaigns on the index")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeats))
    sys.stdout.flush()
    os._exit(0)  # the SDK's runtime can crash at interpreter exit (TEMPORAL_NOTES)


if __name__ == "__main__":
    main()
