"""`python worker.py` as ops run it: serves workflows, stops cleanly on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from csm.settings import Settings
from workflows.health import StackCheckInput, StackCheckWorkflow

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_worker_serves_then_shuts_down_gracefully(
    client: Client, settings: Settings, stop_signal: signal.Signals
) -> None:
    task_queue = f"worker-process-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": settings.effective_database_url,
        "CSM_TEMPORAL_ADDRESS": settings.temporal_address,
        "CSM_TASK_QUEUE": task_queue,
        "CSM_SMTP_HOST": settings.smtp_host,
        "CSM_SMTP_PORT": str(settings.smtp_port),
        "CSM_METRICS_ADDRESS": "",  # no fixed port: tests/test_metrics.py serves metrics
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "worker.py",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        health = await client.execute_workflow(
            StackCheckWorkflow.run,
            StackCheckInput(check_smtp=True),
            id=f"worker-process-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        assert health.smtp is not None and health.smtp.noop_code == 250
        worker.send_signal(stop_signal)
        output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    finally:
        if worker.returncode is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert b"shutting down" in output
