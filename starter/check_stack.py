"""Start the stack check from a script: the smallest example of csm's typed workflow inputs.

python starter/check_stack.py        # needs a running worker (`csm worker`)
"""

from __future__ import annotations

import asyncio
import uuid

from csm.exit import run_and_exit
from csm.settings import load_settings
from csm.temporal_client import connect
from workflows.health import StackCheckInput, StackCheckWorkflow


async def main() -> None:
    settings = load_settings()
    client = await connect(settings)
    health = await client.execute_workflow(
        StackCheckWorkflow.run,
        StackCheckInput(check_smtp=True),
        id=f"stack-check-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    print(f"database {health.database.server_version}, schema {health.database.schema_revision}")


if __name__ == "__main__":
    run_and_exit(lambda: asyncio.run(main()))
