"""`python worker.py` as ops run it: serves workflows, stops cleanly on SIGTERM / SIGINT."""

from __future__ import annotations

import signal
import uuid

import pytest
from temporalio.client import Client

from csm.settings import Settings
from csm.testing.workers import environment, worker_processes
from workflows.health import StackCheckInput, StackCheckWorkflow


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_worker_serves_then_shuts_down_gracefully(
    client: Client, settings: Settings, stop_signal: signal.Signals
) -> None:
    task_queue = f"worker-process-{uuid.uuid4().hex[:8]}"
    async with worker_processes(environment(settings, task_queue=task_queue)) as (worker,):
        health = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(check_smtp=True),
            id=f"worker-process-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        assert health.smtp is not None and health.smtp.noop_code == 250
        await worker.stop(stop_signal, grace=60)
    assert worker.returncode == 0, worker.output()
    assert "shutting down" in worker.output()
