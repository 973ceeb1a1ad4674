"""A sharded pass (`pacing.shards`) run by two real worker processes on the dev server:
every selected contact once, counts exact, both processes worked; a SIGKILL of one
process mid-pass; pause, resume and stop of a sharded pass; bad shard values refused."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.passes import PassInput
from csm.control import start_sub_campaign
from csm.plan import PassStatus
from csm.settings import Settings
from csm.strategy import StrategyError, load_strategy
from csm.testing.workers import WorkerProcess, environment, worker_processes
from tests.helpers import campaign_with_list, wait_for_plan
from tests.test_subcampaign_control import assert_exact
from workflows.subcampaign import SubCampaignWorkflow

CONTACTS = 3000
STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "sharded calls"
channel = "voice"
pacing = { shards = 2, concurrency = 10 }
retries = { per_device = 1, gap = "0s" }
"""


def _env(settings: Settings, task_queue: str, latency_ms: int) -> dict[str, str]:
    """One activity at a time per worker process, so each shard gets its own process."""
    return environment(
        settings,
        task_queue=task_queue,
        simulator_latency_ms=latency_ms,
        max_concurrent_activities=1,
    )


async def _scalar(engine: AsyncEngine, sql: str, sub_id: int) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), {"s": sub_id})


async def _round0_rows(engine: AsyncEngine, sub_id: int) -> int:
    return await _scalar(
        engine,
        "SELECT count(*) FROM attempts WHERE sub_campaign_id = :s AND try_number = 0",
        sub_id,
    )


async def _wait_rows(engine: AsyncEngine, sub_id: int, at_least: int) -> None:
    async with asyncio.timeout(90):
        while True:
            if await _round0_rows(engine, sub_id) >= at_least:
                return
            await asyncio.sleep(0.05)


async def _shard_workers(handle: WorkflowHandle) -> dict[int, set[str]]:
    """Shard number → identities of the worker processes that started it (from the
    history: the activity's input names the shard, the started event the worker)."""
    history = await handle.fetch_history()
    scheduled: dict[int, int] = {}
    started: dict[int, set[str]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            summary = event.user_metadata.summary.data.decode()
            if "· shard " in summary:
                shard = int(summary.split("· shard ")[1].split(" ")[0]) - 1
                scheduled[event.event_id] = shard
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if attributes.scheduled_event_id in scheduled:
                shard = scheduled[attributes.scheduled_event_id]
                started.setdefault(shard, set()).add(attributes.identity)
    return started


async def _assert_complete_and_exact(engine: AsyncEngine, handle: WorkflowHandle, sub_id: int):
    """Exact ledger, every contact of the list with a round-0 row, counts equal to the
    ledger's, shards contiguous and through. Returns the pass's counts."""
    await assert_exact(engine, sub_id)
    plan = await handle.query(SubCampaignWorkflow.plan_query)
    counts = plan.passes[0].counts
    assert counts is not None
    assert counts.selected == CONTACTS
    contacts = await _scalar(
        engine,
        "SELECT count(DISTINCT contact_id) FROM attempts WHERE sub_campaign_id = :s"
        " AND try_number = 0",
        sub_id,
    )
    assert contacts == CONTACTS
    async with engine.connect() as connection:
        by_result = dict(
            (
                await connection.execute(
                    text(
                        "SELECT result, count(*) FROM attempts WHERE sub_campaign_id = :s"
                        " AND result <> 'skipped' GROUP BY result"
                    ),
                    {"s": sub_id},
                )
            ).all()
        )
        shards = (
            await connection.execute(
                text(
                    "SELECT shard, lo, selected, cursor, inflight_to FROM pass_shards"
                    " WHERE sub_campaign_id = :s ORDER BY shard"
                ),
                {"s": sub_id},
            )
        ).all()
    assert counts.results == by_result
    assert [(s.shard, s.lo, s.selected) for s in shards] == [
        (0, 0, CONTACTS // 2),
        (1, CONTACTS // 2, CONTACTS),
    ]
    assert all(s.cursor == s.selected and s.inflight_to is None for s in shards)
    return counts


async def test_two_workers_share_a_sharded_pass_exactly(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=CONTACTS)
    queue = f"shards-{uuid.uuid4().hex[:8]}"
    async with worker_processes(_env(settings, queue, 2), 2, client=client) as processes:
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 120)
        assert summary.state == "completed"
        counts = await _assert_complete_and_exact(engine, launched.handle, launched.sub_campaign.id)
    assert counts.unknown == 0
    assert counts.attempted > 0
    workers = await _shard_workers(launched.handle)
    assert sorted(workers) == [0, 1]
    ran = set().union(*workers.values())
    assert len(ran) == 2, ran  # one shard on each process
    pids = {identity.split("@")[0] for identity in ran}
    assert pids == {str(p.pid) for p in processes}


async def test_sigkill_of_one_worker_mid_pass_stays_exact(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=CONTACTS, seed=2)
    queue = f"shards-kill-{uuid.uuid4().hex[:8]}"
    async with worker_processes(_env(settings, queue, 15), 2, client=client) as processes:
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        sub_id = launched.sub_campaign.id
        await _wait_rows(engine, sub_id, 400)
        await asyncio.sleep(random.uniform(0.05, 0.6))  # at a random moment of a batch
        await processes[0].kill()
        before_restart = await _round0_rows(engine, sub_id)
        processes.append(await WorkerProcess.start(_env(settings, queue, 15)))
        summary = await asyncio.wait_for(launched.handle.result(), 180)
        assert summary.state == "completed"
        counts = await _assert_complete_and_exact(engine, launched.handle, sub_id)
    assert before_restart < CONTACTS * 2
    # Only the killed process's batch in flight can be unknown, and only inside one shard.
    unknown_shards = await _scalar(
        engine,
        """SELECT count(DISTINCT h.shard) FROM attempts a
           JOIN pass_selections s ON s.sub_campaign_id = a.sub_campaign_id AND s.day = a.day
             AND s.pass_number = a.pass_number AND s.round = 0 AND s.contact_id = a.contact_id
           JOIN pass_shards h ON h.sub_campaign_id = s.sub_campaign_id AND h.day = s.day
             AND h.pass_number = s.pass_number AND s.seq > h.lo AND s.seq <= h.selected
           WHERE a.sub_campaign_id = :s AND a.result = 'unknown'""",
        sub_id,
    )
    assert unknown_shards <= 1
    assert counts.unknown <= 2000  # at most the one batch that was in flight
    history = await launched.handle.fetch_history()
    retried = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(retried) >= 2  # the killed process's shard was taken up again
    print(f"rows before restart {before_restart}, unknown after the crash {counts.unknown}")


async def test_pause_resume_and_stop_of_a_sharded_pass_lose_nothing(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=CONTACTS, seed=3)
    queue = f"shards-pause-{uuid.uuid4().hex[:8]}"
    async with worker_processes(_env(settings, queue, 15), 2, client=client):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        handle, sub_id = launched.handle, launched.sub_campaign.id
        await _wait_rows(engine, sub_id, 300)
        await handle.signal(SubCampaignWorkflow.pause)
        await wait_for_plan(handle, lambda p: p.passes[0].status is PassStatus.PAUSED, "paused")
        paused_rows = await _round0_rows(engine, sub_id)
        async with engine.connect() as connection:
            shards = (
                await connection.execute(
                    text(
                        "SELECT cursor, selected, inflight_to FROM pass_shards"
                        " WHERE sub_campaign_id = :s ORDER BY shard"
                    ),
                    {"s": sub_id},
                )
            ).all()
        # Each shard recorded its batch in hand: nothing in flight, nothing done past it.
        assert len(shards) == 2 and all(s.inflight_to is None for s in shards)
        assert any(s.cursor < s.selected for s in shards)
        await asyncio.sleep(1.0)
        assert await _round0_rows(engine, sub_id) == paused_rows  # paused means no attempts
        assert 0 < paused_rows < CONTACTS

        await handle.signal(SubCampaignWorkflow.resume)
        summary = await asyncio.wait_for(handle.result(), 120)
        assert summary.state == "completed"
        counts = await _assert_complete_and_exact(engine, handle, sub_id)
        assert counts.unknown == 0  # a pause is not a crash: nothing left unknown

        # A second sub-campaign, stopped mid-pass: the rest is skipped `stopped`, once.
        stopped = await start_sub_campaign(
            client,
            engine,
            campaign=campaign,
            list_name=list_name,
            task_queue=queue,
            name=f"stopped-{uuid.uuid4().hex[:6]}",
        )
        await _wait_rows(engine, stopped.sub_campaign.id, 300)
        await stopped.handle.signal(SubCampaignWorkflow.stop)
        summary = await asyncio.wait_for(stopped.handle.result(), 120)
        assert summary.state == "stopped"
        counts = await _assert_complete_and_exact(engine, stopped.handle, stopped.sub_campaign.id)
    assert counts.unknown == 0
    assert counts.skip_reasons.get("stopped", 0) > 0


@pytest.mark.parametrize(
    ("pacing", "says"),
    [
        ("{ shards = 0 }", "pacing.shards: input should be greater than 0"),
        ("{ shards = 33 }", "pacing.shards: input should be less than or equal to 32"),
        ('{ shards = "2" }', "pacing.shards: input should be a valid integer"),
        ("{ shards = 4, per_minute = 3 }", "pacing.per_minute (3) is less than pacing.shards"),
        ("{ shards = 11 }", "pacing.concurrency (10) is less than pacing.shards (11)"),
    ],
)
def test_bad_shards_are_refused_naming_pass_and_field(pacing: str, says: str) -> None:
    text_ = f'timezone = "UTC"\n[[passes]]\nname = "calls"\nchannel = "voice"\npacing = {pacing}\n'
    with pytest.raises(StrategyError) as caught:
        load_strategy(text_)
    (issue,) = caught.value.issues
    assert str(issue).startswith("pass 1 'calls': pacing"), str(issue)
    assert says in str(issue)


def test_a_pass_with_agents_is_not_sharded() -> None:
    text_ = (
        'timezone = "UTC"\n[[passes]]\nname = "agents"\nchannel = "dialer"\n'
        "pacing = { shards = 2 }\n"
    )
    with pytest.raises(StrategyError) as caught:
        load_strategy(text_)
    assert "pass 1 'agents': pacing.shards: a pass with agents" in str(caught.value)


def test_shares_of_pacing_never_add_up_to_more_than_the_pass() -> None:
    definition = load_strategy(
        'timezone = "UTC"\n[[passes]]\nname = "p"\nchannel = "sms"\n'
        "pacing = { shards = 3, per_minute = 100, concurrency = 10 }\n"
    ).passes[0]
    share = definition.pacing.shared(3)
    assert (share.per_minute, share.concurrency) == (33, 3)
    assert definition.pacing.shared(1) is definition.pacing


@pytest.mark.parametrize(("shard", "shards"), [(2, 2), (-1, 2), (0, 0), (0, 33)])
def test_a_pass_input_that_names_no_shard_is_refused(shard: int, shards: int) -> None:
    definition = load_strategy(
        'timezone = "UTC"\n[[passes]]\nname = "p"\nchannel = "voice"\n'
    ).passes[0]
    params = PassInput(
        sub_campaign_id=1,
        campaign_id=1,
        list_id=1,
        day=date(2026, 11, 25),
        pass_number=1,
        definition=definition,
        response_groups={},
        campaign_timezone="UTC",
        shard=shard,
        shards=shards,
    )
    with pytest.raises(ApplicationError) as caught:
        params.check()
    assert caught.value.non_retryable
    assert "is not a shard" in str(caught.value)
