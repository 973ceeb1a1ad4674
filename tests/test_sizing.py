"""A worker's sizing is checked when it starts (issue 16): a database pool PostgreSQL cannot
give, or one smaller than a pass uses at once, is refused with what to change; a sane one
is logged with its figures, and with a warning when passes will wait their turn.

Everything runs on the session's real PostgreSQL, whose limits are read, not assumed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from pydantic import ValidationError
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client

from csm.control import start_sub_campaign
from csm.database import create_engine
from csm.errors import CsmError
from csm.settings import Settings
from csm.sizing import (
    CONNECTIONS_PER_PASS,
    SDK_DEFAULT_CONCURRENT_ACTIVITIES,
    ServerConnections,
    SizingError,
    check_sizing,
    judge,
    log_sizing,
    server_connections,
)
from csm.testing.workers import ROOT, WorkerProcess, environment
from tests.helpers import campaign_with_list
from worker import build_worker

#: How long a borrower waits before the test takes "no connection came" for an answer.
NO_CONNECTION_WITHIN = 1.0


async def test_a_pool_larger_than_the_server_can_give_is_refused_with_what_to_change(
    engine: AsyncEngine, settings: Settings
) -> None:
    server = await server_connections(engine)
    too_many = server.max_connections + 1  # more than it has, whoever else is connected
    with pytest.raises(SizingError) as refused:
        await check_sizing(engine, settings.model_copy(update={"database_pool_size": too_many}))
    message = str(refused.value)
    assert f"CSM_DATABASE_POOL_SIZE={too_many}" in message
    assert f"max_connections={server.max_connections}" in message
    assert "raise max_connections on the server to" in message


def test_the_pool_may_take_what_the_server_gives_ordinary_roles_and_not_one_more() -> None:
    server = ServerConnections(max_connections=100, superuser_reserved=3, reserved=2, in_use=15)
    assert (server.for_ordinary_roles, server.left) == (95, 80)
    assert judge(95, 10, server).pool == 95  # more than is left now: a warning, not refused
    with pytest.raises(SizingError) as refused:
        judge(96, 10, server)
    message = str(refused.value)
    assert "leaves 95" in message and "lower CSM_DATABASE_POOL_SIZE to 95 or less" in message
    assert "raise max_connections on the server to 101 or more" in message  # 96 + 5
    # With fewer than a pass uses for ordinary roles, lowering the pool is no way out.
    tiny = ServerConnections(max_connections=5, superuser_reserved=3, reserved=0, in_use=0)
    with pytest.raises(SizingError) as refused:
        judge(CONNECTIONS_PER_PASS, 1, tiny)
    assert "lower CSM_DATABASE_POOL_SIZE" not in str(refused.value)
    assert "raise max_connections on the server to 6 or more" in str(refused.value)


def test_a_pool_larger_than_what_is_left_now_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ServerConnections(max_connections=100, superuser_reserved=3, reserved=0, in_use=90)
    with caplog.at_level(logging.WARNING, logger="csm.sizing"):
        log_sizing(judge(20, 1, server))
    assert "more than PostgreSQL has left now (7: other clients hold 90)" in caplog.text


async def test_a_pool_smaller_than_one_pass_uses_is_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    small = settings.model_copy(update={"database_pool_size": CONNECTIONS_PER_PASS - 1})
    with pytest.raises(SizingError) as refused:
        await check_sizing(engine, small)
    message = str(refused.value)
    assert f"CSM_DATABASE_POOL_SIZE={CONNECTIONS_PER_PASS - 1}" in message
    assert f"set CSM_DATABASE_POOL_SIZE to {CONNECTIONS_PER_PASS} or more" in message
    assert "reader, attempt stage, recorder" in message
    with pytest.raises(ValidationError, match="database_pool_size"):
        Settings(database_pool_size=0, _env_file=None)


async def test_a_sane_pool_is_accepted_with_the_server_s_figures(
    engine: AsyncEngine, settings: Settings, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.connect() as connection:
        shown = {
            name: int((await connection.execute(text(f"SHOW {name}"))).scalar_one())
            for name in ("max_connections", "superuser_reserved_connections")
        }
    sane = settings.model_copy(
        update={"database_pool_size": CONNECTIONS_PER_PASS, "max_concurrent_activities": 1}
    )
    others = create_engine(database_url, connections=3)
    try:
        async with _held(others, 3):  # three other clients' connections, at least
            sizing = await check_sizing(engine, sane)
    finally:
        await others.dispose()
    assert (sizing.pool, sizing.passes_at_once) == (CONNECTIONS_PER_PASS, 1)
    assert sizing.server.max_connections == shown["max_connections"]
    assert sizing.server.superuser_reserved == shown["superuser_reserved_connections"]
    assert sizing.server.in_use >= 3
    assert not sizing.passes_wait
    with caplog.at_level(logging.INFO, logger="csm.sizing"):
        log_sizing(sizing)
    assert [record.levelname for record in caplog.records] == ["INFO"]
    assert (
        f"database pool {CONNECTIONS_PER_PASS} connections (CSM_DATABASE_POOL_SIZE), 1 passes"
        f" at once (CSM_MAX_CONCURRENT_ACTIVITIES), {CONNECTIONS_PER_PASS} connections a pass;"
        f" PostgreSQL max_connections {shown['max_connections']}"
    ) in caplog.text


async def test_more_passes_than_the_pool_serves_side_by_side_is_a_warning_not_a_refusal(
    engine: AsyncEngine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    unset = settings.model_copy(update={"database_pool_size": 5, "max_concurrent_activities": None})
    sizing = await check_sizing(engine, unset)
    assert sizing.passes_at_once == SDK_DEFAULT_CONCURRENT_ACTIVITIES
    assert sizing.passes_wait
    with caplog.at_level(logging.INFO, logger="csm.sizing"):
        log_sizing(sizing)
    assert [record.levelname for record in caplog.records] == ["INFO", "WARNING"]
    assert "= 300 > the database pool's 5: passes will wait their turn" in caplog.text


async def test_a_server_that_refuses_the_worker_a_connection_is_a_sizing_error(
    engine: AsyncEngine, settings: Settings, database_url: str
) -> None:
    """A role allowed no connection meets what a worker meets on a full server: PostgreSQL's
    too_many_connections, raised through SQLAlchemy."""
    role = f"csm_sizing_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    try:
        url = make_url(database_url).set(username=role, password=None)
        as_role = url.render_as_string(hide_password=False)
        refused_engine = create_engine(as_role, connections=CONNECTIONS_PER_PASS)
        try:
            with pytest.raises(SizingError, match=f'too many connections for role "{role}"'):
                await check_sizing(
                    refused_engine,
                    settings.model_copy(update={"database_url": as_role, "database_pool_size": 3}),
                )
        finally:
            await refused_engine.dispose()
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP ROLE {role}"))


async def test_an_unreachable_database_is_one_line_not_a_traceback(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/x"})
    unreachable = create_engine(nowhere.effective_database_url)
    try:
        with pytest.raises(CsmError, match=r"cannot reach the database at \S+@127\.0\.0\.1:1/x"):
            await check_sizing(unreachable, nowhere)
    finally:
        await unreachable.dispose()


@pytest.mark.parametrize(
    ("given", "most"), [({"connections": 3}, 3), ({"pool_size": 1}, 2)], ids=["total", "legacy"]
)
async def test_an_engine_holds_no_more_connections_than_its_total(
    database_url: str, given: dict[str, int], most: int
) -> None:
    bounded = create_engine(database_url, **given)
    try:
        async with _held(bounded, most):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(bounded.connect().start(), NO_CONNECTION_WITHIN)
    finally:
        await bounded.dispose()


STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "reminder call"
channel = "voice"
[passes.pacing]
concurrency = 10
"""


async def test_one_pass_uses_no_more_connections_at_once_than_the_sizing_counts(
    client: Client, engine: AsyncEngine, settings: Settings, database_url: str
) -> None:
    """CONNECTIONS_PER_PASS is what one pass borrows at once, at most: measured on the pool
    of a worker that runs a pass of ten lanes with the simulator's latency, so its stages
    overlap, and nothing else."""
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=400)
    measured = create_engine(database_url, connections=20)
    out, peak = 0, 0

    def checked_out(*_: object) -> None:
        nonlocal out, peak
        out += 1
        peak = max(peak, out)

    def checked_in(*_: object) -> None:
        nonlocal out
        out -= 1

    event.listen(measured.sync_engine.pool, "checkout", checked_out)
    event.listen(measured.sync_engine.pool, "checkin", checked_in)
    queue = f"sizing-{uuid.uuid4().hex[:8]}"
    simulated = settings.model_copy(
        update={"voice_provider": "simulator", "simulator_latency_ms": 20}
    )
    try:
        async with build_worker(client, simulated, engine=measured, task_queue=queue):
            launched = await start_sub_campaign(
                client, engine, campaign=campaign, list_name=list_name, task_queue=queue
            )
            summary = await asyncio.wait_for(launched.handle.result(), 180)
    finally:
        await measured.dispose()
    assert summary.state == "completed"
    assert 1 <= peak <= CONNECTIONS_PER_PASS, f"a pass held {peak} connections at once"


async def test_a_worker_with_an_impossible_pool_exits_with_the_message_and_no_traceback(
    settings: Settings,
) -> None:
    env = environment(
        settings, task_queue=f"sizing-{uuid.uuid4().hex[:8]}", database_pool_size=100_000
    )
    worker = await WorkerProcess.start(env)
    try:
        code = await asyncio.wait_for(worker.wait(), 60)
    finally:
        await worker.kill()
    output = worker.output()
    assert code == 1, output
    assert "csm: error: CSM_DATABASE_POOL_SIZE=100000 is more connections than" in output
    assert "max_connections=" in output
    assert "Traceback" not in output
    # `csm worker` is the same worker: the same refusal, the same way.
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csm.cli",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed, _ = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 1, printed
    assert b"csm: error: CSM_DATABASE_POOL_SIZE=100000" in printed
    assert b"Traceback" not in printed


async def test_a_worker_with_a_sane_pool_logs_its_figures_and_serves(
    client: Client, settings: Settings
) -> None:
    env = environment(
        settings,
        task_queue=f"sizing-{uuid.uuid4().hex[:8]}",
        database_pool_size=5,
        max_concurrent_activities=2,
    )
    worker = await WorkerProcess.start(env)
    try:
        await worker.polling(client)
    finally:
        await worker.stop()
    output = worker.output()
    assert "INFO sizing: database pool 5 connections (CSM_DATABASE_POOL_SIZE), 2 passes" in output
    assert "WARNING up to 2 passes at once x 3 connections a pass = 6" in output


@asynccontextmanager
async def _held(engine: AsyncEngine, n: int) -> AsyncIterator[list[AsyncConnection]]:
    """`n` of the engine's connections, checked out together for the block."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(engine.connect()) for _ in range(n)]
