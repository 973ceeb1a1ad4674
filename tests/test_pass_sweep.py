"""The staged sweep (csm.passes.sweep): a stage's error ends the pass as itself, after
what was attempted before it is recorded, and nothing is recorded past a failed record."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import csm.passes.sweep as sweep
from csm.channels import Channels
from csm.channels.simulator import SimulatedCarrier
from csm.compliance.store import set_policy
from csm.ledger import StaleBatch
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.vocabulary import Channel
from tests.compliance_helpers import WatchingCarrier, rows_of, run_pass
from tests.helpers import campaign_with_list

#: No window, no policy hours that close: every contact is attempted, in batches of 16 up.
STRATEGY = 'timezone = "UTC"\n[[passes]]\nname = "call"\nchannel = "voice"\n'


async def _pass(engine: AsyncEngine) -> tuple[Any, Any]:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=400, seed=5)
    await _open_all_day(engine, campaign)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    return sub, load_strategy(STRATEGY)


async def _open_all_day(engine: AsyncEngine, campaign: str) -> None:
    await set_policy(engine, '[hours]\nvoice = "any"\n', campaign=campaign)


async def _ledger(engine: AsyncEngine, sub_id: int) -> tuple[int, int, int]:
    """(cursor, selected, contacts with a row) of the sub-campaign's pass 1."""
    [(cursor, selected)] = await rows_of(
        engine, "SELECT cursor, selected FROM pass_progress WHERE sub_campaign_id = :s", s=sub_id
    )
    [(recorded,)] = await rows_of(
        engine,
        "SELECT count(DISTINCT contact_id) FROM attempts WHERE sub_campaign_id = :s",
        s=sub_id,
    )
    return cursor, selected, recorded


async def test_a_failed_record_fails_the_pass_as_itself_and_nothing_after_it_is_recorded(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub, strategy = await _pass(engine)
    recorded = sweep.record
    calls = 0

    async def second_is_stale(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StaleBatch("the second batch came after its range was closed")
        await recorded(*args, **kwargs)

    monkeypatch.setattr(sweep, "record", second_is_stale)
    with pytest.raises(StaleBatch, match="second batch"):
        await run_pass(engine, WatchingCarrier(latency_seconds=0).channels(), sub, strategy, 1)
    cursor, selected, contacts = await _ledger(engine, sub.id)
    assert 0 < cursor < selected  # the first batch recorded, the rest not
    assert contacts == cursor  # no batch after the failed one was recorded


async def test_a_failed_read_ahead_fails_the_pass_after_the_batch_in_hand_is_recorded(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub, strategy = await _pass(engine)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("read ahead failed")

    monkeypatch.setattr(sweep, "read_ahead", broken)
    with pytest.raises(RuntimeError, match="read ahead failed"):
        await run_pass(engine, WatchingCarrier(latency_seconds=0).channels(), sub, strategy, 1)
    cursor, selected, contacts = await _ledger(engine, sub.id)
    assert 0 < cursor < selected
    assert contacts == cursor  # the batch worked while the next was read is recorded


def test_lanes_get_more_contacts_a_batch_when_outcomes_come_back_later() -> None:
    """A batch waits for its slowest attempt: with a real carrier's asynchronous outcomes
    each lane gets several contacts a batch, not one (the simulator's answer is at once)."""

    class LaterCarrier(SimulatedCarrier):
        asynchronous = True

    def run_with(carrier: SimulatedCarrier, concurrency: int, batch_size: int = 2000) -> Any:
        definition = SimpleNamespace(
            channel=Channel.VOICE, pacing=SimpleNamespace(concurrency=concurrency)
        )
        params = SimpleNamespace(definition=definition, batch_size=batch_size)
        tools = SimpleNamespace(channels=Channels({Channel.VOICE: carrier}))
        return SimpleNamespace(params=params, tools=tools)

    assert sweep.smallest_batch(run_with(SimulatedCarrier(), 64)) == 64
    assert sweep.smallest_batch(run_with(SimulatedCarrier(), 4)) == 16
    later = LaterCarrier()
    assert sweep.smallest_batch(run_with(later, 64)) == 64 * sweep.ASYNC_LANE_CONTACTS
    assert sweep.smallest_batch(run_with(later, 64, batch_size=300)) == 300
