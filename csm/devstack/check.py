"""Prove the stack works end to end: a workflow, a worker, the database and SMTP."""

from __future__ import annotations

import time
import uuid

from csm.settings import Settings
from csm.temporal_client import connect


async def check_stack(settings: Settings, *, check_smtp: bool = True) -> str:
    """Run StackCheckWorkflow on an in-process worker; a one-line summary of what answered."""
    from worker import build_worker
    from workflows.health import StackCheckInput, StackCheckWorkflow

    started = time.monotonic()
    client = await connect(settings)
    task_queue = f"csm-check-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, task_queue=task_queue):
        health = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(check_smtp=check_smtp),
            id=f"stack-check-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
    smtp = f", smtp {health.smtp.noop_code}" if health.smtp else ""
    return (
        f"temporal {settings.temporal_address}, postgres {health.database.server_version} "
        f"(schema {health.database.schema_revision}){smtp}, "
        f"round trip {time.monotonic() - started:.2f}s"
    )
