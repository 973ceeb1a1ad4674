"""A private stack whose parts a test can kill and restart: PostgreSQL, Temporal, SMTP, workers.

The session's shared servers (tests/conftest.py) cannot be restarted under other
tests, so the process-fault tests bring their own: an embedded PostgreSQL in a
temporary directory (one database per run, so every run gets the same ids), a
Temporal dev server on a state file (its history survives a restart), the SMTP
sink in this process (stopped and started on the same port) and worker
processes started from `worker.py` exactly as operators run them (csm.testing.workers).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from csm.compliance.store import set_policy
from csm.database import create_engine, upgrade_async
from csm.devstack.postgres import EmbeddedPostgres
from csm.devstack.processes import port_open, wait_for_port
from csm.devstack.smtp_sink import start_sink
from csm.devstack.temporal import dev_server_argv
from csm.settings import Settings
from csm.testing.servers import free_port
from csm.testing.workers import WorkerProcess, environment

#: Calls at any hour, no caps: a fault test checks the pass machinery, not the policy.
ANY_HOURS = '[hours]\nvoice = "any"\nsms = "any"\nemail = "any"\n'


@dataclass
class Run:
    """One sub-campaign run's own database and carrier journal."""

    name: str
    url: str
    engine: AsyncEngine
    journal: Path
    mail: Path  # where the SMTP sink stores this run's messages


class FaultStack:
    def __init__(self, root: Path):
        self.root = root
        self.postgres = EmbeddedPostgres(
            root / "postgres", free_port(), extra_settings={"fsync": "off"}
        )
        self.temporal_port = free_port()
        self.temporal_ui_port = free_port()
        self.temporal: subprocess.Popen | None = None
        self.smtp_port = free_port()
        self.smtp: Controller | None = None
        self.workers: list[WorkerProcess] = []
        self.client: Client | None = None

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    async def start(self) -> None:
        await asyncio.to_thread(self.postgres.start)
        await self.start_temporal()
        self.client = await Client.connect(
            self.temporal_address, data_converter=pydantic_data_converter
        )

    async def close(self) -> None:
        for worker in self.workers:
            await worker.kill()
        self.stop_smtp()
        await self.stop_temporal()
        await asyncio.to_thread(self.postgres.stop)

    # Temporal ------------------------------------------------------------------------------

    async def start_temporal(self) -> None:
        self._spawn_temporal()
        await asyncio.to_thread(wait_for_port, "127.0.0.1", self.temporal_port, timeout=30)
        await asyncio.sleep(0.5)  # the port opens a moment before the frontend serves

    def _spawn_temporal(self) -> None:
        argv = dev_server_argv(
            db_file=self.root / "temporal.db",
            host="127.0.0.1",
            port=self.temporal_port,
            ui_port=self.temporal_ui_port,
        )
        log = (self.root / "temporal.log").open("ab")
        self.temporal = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)

    async def stop_temporal(self) -> None:
        if self.temporal is None or self.temporal.poll() is not None:
            return
        self.temporal.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.temporal.wait, 30)
        while True:  # its port is free again before it starts anew
            if not port_open("127.0.0.1", self.temporal_port):
                return
            await asyncio.sleep(0.1)

    async def restart_temporal(self) -> None:
        await self.stop_temporal()
        await self.start_temporal()

    # PostgreSQL -----------------------------------------------------------------------------

    async def restart_postgres(self, down_for: float = 2.0) -> None:
        """Fast shutdown (every connection is cut), a pause, then the same server again."""
        await asyncio.to_thread(self.postgres.stop)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.postgres.start)

    async def new_run(self, name: str) -> Run:
        """A fresh migrated database with the any-hours policy, and a journal path."""
        await self.postgres.create_database(name)
        url = self.postgres.url(name)
        await upgrade_async(url)
        engine = create_engine(url)
        await set_policy(engine, ANY_HOURS, author="fault tests")
        mail = self.root / f"mail-{name}"
        mail.mkdir()
        return Run(name, url, engine, self.root / f"journal-{name}.tsv", mail)

    # SMTP ------------------------------------------------------------------------------------

    def start_smtp(self, directory: Path) -> None:
        self.stop_smtp()
        self.smtp = start_sink(directory, "127.0.0.1", self.smtp_port)

    def stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None

    # Workers ---------------------------------------------------------------------------------

    async def start_worker(
        self, run: Run, task_queue: str, *, latency_ms: float, **overrides: object
    ) -> WorkerProcess:
        """A worker on this stack for `run`, its output appended to the run's worker log.

        `overrides` are further Settings fields for the worker (e.g. the provider settings
        that send its voice and SMS through the local carrier)."""
        settings = Settings(
            database_url=run.url,
            temporal_address=self.temporal_address,
            smtp_host="127.0.0.1",
            smtp_port=self.smtp_port,
            _env_file=None,
        )
        env = environment(
            settings,
            task_queue=task_queue,
            simulator_latency_ms=latency_ms,
            simulator_journal=run.journal,
            # Voice odds do not switch to evening mid-test: runs minutes apart compare equal.
            simulator_evening_from_hour=24,
            **overrides,
        )
        worker = await WorkerProcess.start(env, log=self.root / f"worker-{run.name}.log")
        self.workers.append(worker)
        return worker
