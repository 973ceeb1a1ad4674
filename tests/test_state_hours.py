"""One state's later hours do not stall a pass (issue 13, item 6).

General hours are open, `[states.FL]` opens in an hour on the contacts' clock, and the
Florida contacts sit among the others in the list. The pass works every contact whose
hours are open now and leaves the Florida ones waiting for their turn.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities
from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.lists.importer import import_list
from csm.plan import PassCounts
from csm.strategy import load_strategy
from csm.subcampaigns import SubCampaignRef, register_sub_campaign
from tests.compliance_helpers import WatchingCarrier, pass_input, rows_of
from tests.helpers import unique
from tests.test_subcampaign_days import midday_zone

CONTACTS = 40
FLORIDA = range(3, CONTACTS, 4)  # every fourth contact, the first near the head of the list


def _strategy(zone: str) -> str:
    return f'timezone = "{zone}"\n\n[[passes]]\nname = "call"\nchannel = "voice"\n'


async def _pass_running(
    engine: AsyncEngine, path: Path, zone: str, policy: str, lines: list[str]
) -> tuple[ActivityEnvironment, asyncio.Future[PassCounts], SubCampaignRef]:
    """A campaign of one voice pass with its own `policy`, the list `lines` imported from
    `path`, and the pass started now in an activity environment (cancel it to stop it)."""
    strategy_text = _strategy(zone)
    strategy = load_strategy(strategy_text)
    campaign, list_name = unique("state-hours"), unique("list")
    await create_campaign(engine, campaign, strategy, strategy_text)
    await set_policy(engine, policy, campaign=campaign)
    path.write_text("\n".join(lines) + "\n")
    await import_list(engine, path, list_name, strict=True)
    sub = await register_sub_campaign(
        engine, campaign=campaign, list_name=list_name, name=unique("run")
    )
    env = ActivityEnvironment()
    now = datetime.now(UTC)
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=now)
    activities = PassActivities(engine, WatchingCarrier(latency_seconds=0).channels())
    task = asyncio.ensure_future(env.run(activities.run_pass, pass_input(sub, strategy, 1, at=now)))
    return env, task, sub


@pytest.mark.parametrize("general", ["any", "00:00-23:59"])
async def test_contacts_open_now_are_worked_while_a_later_state_waits(
    engine: AsyncEngine, tmp_path: Path, general: str
) -> None:
    zone = midday_zone()
    local_now = datetime.now(UTC).astimezone(ZoneInfo(zone))
    fl_opens = (local_now + timedelta(hours=1)).replace(second=0, microsecond=0)
    policy = f'[hours]\nvoice = "{general}"\n\n[states.FL]\nvoice = "{fl_opens:%H:%M}-23:59"\n'
    prefix = unique("acct")
    lines = ["account,wireless,timezone,state"]
    for n in range(CONTACTS):
        state = "FL" if n in FLORIDA else "NY"
        lines.append(f"{prefix}-{n:03},+1 212 555 {n:04},{zone},{state}")
    env, task, sub = await _pass_running(engine, tmp_path / "mixed.csv", zone, policy, lines)
    open_now = CONTACTS - len(FLORIDA)
    query = (
        "SELECT c.attributes->>'state', count(DISTINCT a.contact_id) FROM attempts a"
        " JOIN contacts c ON c.id = a.contact_id WHERE a.sub_campaign_id = :s"
        " GROUP BY c.attributes->>'state'"
    )
    worked: dict[str, int] = {}
    try:
        async with asyncio.timeout(20):
            while worked.get("NY", 0) < open_now:
                worked = dict(await rows_of(engine, query, s=sub.id))
                await asyncio.sleep(0.1)
    except TimeoutError:
        pass  # asserted below, with what was worked
    await asyncio.sleep(0.3)
    assert not task.done()  # waiting for Florida's hours, not finished
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    worked = dict(await rows_of(engine, query, s=sub.id))
    assert worked == {"NY": open_now}  # every open contact worked; no Florida row yet


async def test_a_holiday_is_skipped_at_once_not_waited_for(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Hours that open in an hour, on a holiday of the contacts' calendar: the holiday
    never opens, so the pass skips them `holiday` now instead of waiting the hour first."""
    zone = midday_zone()
    local_now = datetime.now(UTC).astimezone(ZoneInfo(zone))
    opens = (local_now + timedelta(hours=1)).replace(second=0, microsecond=0)
    policy = f'holidays = [{local_now:%Y-%m-%d}]\n[hours]\nvoice = "{opens:%H:%M}-23:59"\n'
    prefix = unique("acct")
    lines = ["account,wireless,timezone"]
    lines += [f"{prefix}-{n},+1 212 555 {n:04},{zone}" for n in range(5)]
    env, task, _ = await _pass_running(engine, tmp_path / "holiday.csv", zone, policy, lines)
    try:
        counts = await asyncio.wait_for(asyncio.shield(task), 20)
    except TimeoutError:
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        raise AssertionError("the pass waited for hours that never open on a holiday") from None
    assert (counts.selected, counts.skip_reasons) == (5, {"holiday": 5})
