"""Calling hours on the contact's clock: New York and Honolulu in one pass, across DST.

The pass activity runs at chosen instants (its clock starts at the activity's
scheduled time): the same UTC time of day gives New York a different local hour
on either side of a DST change, and Honolulu (no DST) is five or six hours behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.lists.importer import import_list
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from tests.compliance_helpers import WatchingCarrier, first_attempt, pass_input
from tests.helpers import unique

STRATEGY = """
timezone = "America/New_York"

[[passes]]
name = "call"
channel = "voice"
"""
POLICY = """
[hours]
voice = "08:00-21:00"
"""


@pytest.fixture
async def two_zones(engine: AsyncEngine, tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """A campaign with the TCPA hours and a list with one New York, one Honolulu contact."""
    campaign, list_name, prefix = unique("hours"), unique("zones"), unique("acct")
    await create_campaign(engine, campaign, load_strategy(STRATEGY), STRATEGY)
    await set_policy(engine, POLICY, campaign=campaign)
    path = tmp_path / "zones.csv"
    path.write_text(
        "account,wireless,timezone\n"
        f"{prefix}-ny,+1 212 555 0101,America/New_York\n"
        f"{prefix}-hnl,+1 808 555 0102,Pacific/Honolulu\n"
    )
    await import_list(engine, path, list_name, strict=True)
    return campaign, list_name, {f"{prefix}-ny": "ny", f"{prefix}-hnl": "hnl"}


async def _run_at(
    engine: AsyncEngine, campaign: str, list_name: str, instant: datetime
) -> tuple[asyncio.Task, ActivityEnvironment, int]:
    """Start the pass as if scheduled at `instant`; returns the task, its environment, sub id."""
    sub = await register_sub_campaign(
        engine, campaign=campaign, list_name=list_name, name=unique("at")
    )
    params = pass_input(sub, load_strategy(STRATEGY), 1, at=instant)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=instant)
    activities = PassActivities(engine, WatchingCarrier(latency_seconds=0).channels())
    return asyncio.ensure_future(env.run(activities.run_pass, params)), env, sub.id


async def _ledger(engine: AsyncEngine, sub_id: int, names: dict[str, str]) -> dict[str, str]:
    """Per contact ("ny", "hnl"): `attempted` or the skip reason."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.account_key, bool_or(a.device_id <> 0), max(a.skip_reason)"
                " FROM attempts a JOIN contacts c ON c.id = a.contact_id"
                " WHERE a.sub_campaign_id = :s GROUP BY c.account_key"
            ),
            {"s": sub_id},
        )
        return {names[key]: "attempted" if tried else reason for key, tried, reason in rows}


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # 01:30 UTC on 8 March 2026: New York 20:30 EST, Honolulu 15:30 HST.
        (datetime(2026, 3, 8, 1, 30, tzinfo=UTC), {"ny": "attempted", "hnl": "attempted"}),
        # The same UTC time a day later, after spring forward: New York 21:30 EDT is closed.
        (datetime(2026, 3, 9, 1, 30, tzinfo=UTC), {"ny": "outside_window", "hnl": "attempted"}),
        # 1 November 2026, still EDT: New York 21:30 closed; the next day, EST: 20:30 open.
        (datetime(2026, 11, 1, 1, 30, tzinfo=UTC), {"ny": "outside_window", "hnl": "attempted"}),
        (datetime(2026, 11, 2, 1, 30, tzinfo=UTC), {"ny": "attempted", "hnl": "attempted"}),
    ],
    ids=["before-spring-forward", "after-spring-forward", "before-fall-back", "after-fall-back"],
)
async def test_hours_follow_each_contacts_clock_across_dst(
    engine: AsyncEngine,
    two_zones: tuple[str, str, dict[str, str]],
    instant: datetime,
    expected: dict[str, str],
) -> None:
    campaign, list_name, names = two_zones
    task, _, sub_id = await _run_at(engine, campaign, list_name, instant)
    counts = await asyncio.wait_for(task, 30)
    assert counts.selected == 2
    assert await _ledger(engine, sub_id, names) == expected


async def test_a_pass_waits_for_honolulu_while_new_york_is_called(
    engine: AsyncEngine, two_zones: tuple[str, str, dict[str, str]]
) -> None:
    """12:30 UTC on spring-forward day: New York 08:30 EDT is open (07:30 had it been EST);
    Honolulu is at 02:30, so the pass calls New York and then waits, rather than skipping."""
    campaign, list_name, names = two_zones
    task, env, sub_id = await _run_at(
        engine, campaign, list_name, datetime(2026, 3, 8, 12, 30, tzinfo=UTC)
    )
    await first_attempt(engine, sub_id)
    seen = await _ledger(engine, sub_id, names)
    await asyncio.sleep(0.5)
    assert not task.done()  # still waiting for Honolulu's 08:00
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == {"ny": "attempted"}
    assert await _ledger(engine, sub_id, names) == {"ny": "attempted"}
