"""`python worker.py` as ops run it: serves workflows, stops cleanly on SIGTERM / SIGINT."""

from __future__ import annotations

import os
import signal
import socket
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


def test_a_worker_environment_carries_exactly_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgresql://db.example/csm", max_concurrent_activities=None, _env_file=None
    )
    monkeypatch.setenv("CSM_MAX_CONCURRENT_ACTIVITIES", "7")  # the shell's, not the settings'
    monkeypatch.setenv("CSM_DATABASE_URL", "postgresql://stale.example/other")
    env = environment(settings, task_queue="q", simulator_latency_ms=15)
    assert env["DATABASE_URL"] == "postgresql://db.example/csm"
    assert "CSM_DATABASE_URL" not in env and "CSM_MAX_CONCURRENT_ACTIVITIES" not in env
    assert (env["CSM_TASK_QUEUE"], env["CSM_SIMULATOR_LATENCY_MS"]) == ("q", "15")
    assert env["CSM_METRICS_ADDRESS"] == ""  # off unless asked for
    # What the worker process reads back is the settings given, overrides included.
    with monkeypatch.context() as child:
        for name in [n for n in os.environ if n.startswith("CSM_") or n == "DATABASE_URL"]:
            child.delenv(name)
        for name, value in env.items():
            child.setenv(name, value)
        read_back = Settings(_env_file=None)
    expected = settings.model_copy(
        update={"task_queue": "q", "simulator_latency_ms": 15, "metrics_address": ""}
    )
    assert read_back.model_dump() == expected.model_dump()
    with pytest.raises(TypeError, match="not a setting: task_que"):
        environment(settings, task_que="q")


async def test_a_worker_that_exits_before_polling_says_why(
    client: Client, settings: Settings
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = environment(
            settings, task_queue=f"never-{uuid.uuid4().hex[:8]}", metrics_address=address
        )
        with pytest.raises(RuntimeError, match="exited 1 before it polled") as caught:
            async with worker_processes(env, client=client):
                pass
    assert "cannot serve metrics on CSM_METRICS_ADDRESS=" in str(caught.value)
