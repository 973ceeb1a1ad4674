"""Workflow step latency on the Temporal dev server, tuned (as `csm dev up` runs it) vs default.

A step is one activity scheduled, run by a worker and its result delivered back
to the workflow. Prints ms per step for both servers.

    python bench/dev_server_latency.py --steps 100
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from csm.devstack.temporal import temporal_binary, tuning_args


@activity.defn
async def step(number: int) -> int:
    return number + 1


@workflow.defn
class Steps:
    @workflow.run
    async def run(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = await workflow.execute_activity(
                step, value, start_to_close_timeout=timedelta(seconds=10)
            )
        return value


async def measure(extra_args: list[str], steps: int) -> float:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_extra_args=extra_args
    )
    try:
        queue = f"bench-{uuid.uuid4().hex[:6]}"
        async with Worker(env.client, task_queue=queue, workflows=[Steps], activities=[step]):
            await env.client.execute_workflow(Steps.run, 3, id=f"warm-{queue}", task_queue=queue)
            started = time.perf_counter()
            await env.client.execute_workflow(Steps.run, steps, id=f"run-{queue}", task_queue=queue)
            return (time.perf_counter() - started) / steps * 1000
    finally:
        await env.shutdown()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    default = await measure([], args.steps)
    tuned = await measure(tuning_args(), args.steps)
    print(
        f"dev server step latency over {args.steps} steps: default {default:.1f} ms, "
        f"tuned {tuned:.1f} ms ({default / tuned:.1f}x faster)"
    )


if __name__ == "__main__":
    asyncio.run(main())
