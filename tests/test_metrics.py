"""The worker process serves Prometheus metrics: the Temporal SDK's and csm's own."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
import uuid
from collections import Counter

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.metrics import worker_runtime
from csm.settings import Settings
from csm.testing.servers import free_port
from csm.testing.workers import environment, worker_processes
from tests.helpers import campaign_with_list

STRATEGY = """
timezone = "America/Chicago"

[[passes]]
name = "first call"
channel = "voice"

[[passes]]
name = "call again"
channel = "voice"
"""
#: Whoever the first pass attempted, the second pass finds capped.
POLICY = """
[hours]
voice = "any"

[[caps]]
name = "one_a_week"
max = 1
period = "7d"
channels = ["voice"]
"""
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in Prometheus text format."""
    parsed = []
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"unparsable metrics line: {line!r}"
        name, labels, value = match.groups()
        parsed.append((name, dict(LABEL.findall(labels or "")), float(value)))
    return parsed


async def _scrape(address: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            assert response.status == 200
            return response.read().decode()

    return await asyncio.to_thread(get)


async def test_worker_serves_sdk_and_csm_metrics(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=200, seed=23)
    await set_policy(engine, POLICY, campaign=campaign, author="tests: metrics")
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    address = f"127.0.0.1:{free_port()}"
    env = environment(settings, task_queue=task_queue, metrics_address=address)
    async with worker_processes(env) as (worker,):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 120)
        assert summary.state == "completed"
        exposition = await _scrape(address)
        await worker.stop(grace=60)
    assert worker.returncode == 0, worker.output()
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT result, coalesce(skip_reason, ''), count(*) FROM attempts"
                " WHERE sub_campaign_id = :s AND channel = 'voice'"
                " GROUP BY result, skip_reason"
            ),
            {"s": launched.sub_campaign.id},
        )
        ledger = {(result, reason): n for result, reason, n in rows}
    parsed = samples(exposition)

    # The SDK's own metrics, on the same endpoint.
    sdk = {name for name, _, _ in parsed if name.startswith("temporal_")}
    assert "temporal_worker_task_slots_available" in sdk, sorted(sdk)
    executed = [
        value
        for name, labels, value in parsed
        if name == "temporal_activity_execution_latency_count"
        and labels.get("activity_type") == "run_pass"
        and labels.get("task_queue") == task_queue
    ]
    assert sum(executed) >= 2  # both passes ran on this worker

    # csm_attempts: exactly the ledger's rows, by result and skip reason.
    counted: Counter[tuple[str, str]] = Counter()
    for name, labels, value in parsed:
        if name == "csm_attempts" and labels["channel"] == "voice":
            assert labels["task_queue"] == task_queue
            counted[labels["result"], labels["skip_reason"]] += int(value)
    assert sum(ledger.values()) > 0
    assert dict(counted) == ledger
    assert sum(counted.values()) == sum(ledger.values())

    # csm_cap_skips: the second pass found the first pass's contacts capped.
    capped = ledger.get(("skipped", "capped:one_a_week"), 0)
    assert capped > 0
    cap_skips = {
        labels["cap"]: value
        for name, labels, value in parsed
        if name == "csm_cap_skips" and labels["channel"] == "voice"
    }
    assert cap_skips == {"one_a_week": capped}

    # csm_pass_duration_seconds: one completed run per pass, in buckets.
    runs = {
        labels["outcome"]: value
        for name, labels, value in parsed
        if name == "csm_pass_duration_seconds_count" and labels["channel"] == "voice"
    }
    assert runs == {"completed": 2}
    all_runs = [
        value
        for name, labels, value in parsed
        if name == "csm_pass_duration_seconds_bucket"
        and labels["le"] == "+Inf"
        and labels["outcome"] == "completed"
    ]
    assert all_runs == [2]


async def test_a_taken_metrics_address_is_a_clear_error(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = environment(
            settings, task_queue=f"metrics-{uuid.uuid4().hex[:8]}", metrics_address=address
        )
        async with worker_processes(env) as (worker,), asyncio.timeout(60):
            await worker.wait()
    output = worker.output()
    assert worker.returncode == 1, output
    assert "csm: error: cannot serve metrics on CSM_METRICS_ADDRESS=" in output, output
    assert "Traceback" not in output


def test_metrics_address_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSM_METRICS_ADDRESS", raising=False)
    assert Settings(_env_file=None).metrics_address == "127.0.0.1:9464"
    monkeypatch.setenv("CSM_METRICS_ADDRESS", "")
    assert Settings(_env_file=None).metrics_address == ""
    assert worker_runtime("") is None  # off: no runtime, no port bound
