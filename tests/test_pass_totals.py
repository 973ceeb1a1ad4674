"""The per-pass totals every ledger write adds to equal a count of the ledger itself."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign
from csm.compliance.store import set_policy
from csm.database import driver_connection
from csm.ledger import (
    AttemptRow,
    PassKey,
    count_pass,
    mark_inflight,
    record_batch,
    settle_inflight,
    skip_remaining,
)
from csm.schedule import campaign_day
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from tests.compliance_helpers import WatchingCarrier, run_pass
from tests.helpers import freeze_whole_list, unique

STRATEGY = """
timezone = "America/New_York"

[[passes]]
name = "call with a retry"
channel = "voice"
retries = { per_device = 1, gap = "0s" }

[[passes]]
name = "text"
channel = "sms"
template = "Hello"
"""
#: Caps that bind mid-contact, so some contacts get attempts and a skip row.
POLICY = """
[hours]
voice = "any"
sms = "any"
[[caps]]
name = "two"
max = 2
period = "day"
"""


async def _reference(engine: AsyncEngine, key: PassKey) -> tuple[dict, dict, int, int]:
    """Counted straight from the ledger rows, as count_pass did before the totals."""
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT result, skip_reason, count(*) AS n, count(DISTINCT contact_id) AS contacts"
            " FROM attempts WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3"
            " GROUP BY result, skip_reason",
            *key.args,
        )
        reach = await connection.fetchrow(
            "SELECT count(*) FILTER (WHERE tried) AS attempted,"
            " count(*) FILTER (WHERE NOT tried) AS skipped FROM ("
            " SELECT bool_or(result NOT IN ('skipped', 'not_attempted')) AS tried FROM attempts"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 GROUP BY contact_id"
            ") c",
            *key.args,
        )
    results = {r["result"]: r["n"] for r in rows if r["result"] != "skipped"}
    reasons = {r["skip_reason"]: r["contacts"] for r in rows if r["result"] == "skipped"}
    return results, reasons, reach["attempted"], reach["skipped"]


async def test_totals_match_the_ledger_after_retries_caps_and_a_stop(engine: AsyncEngine) -> None:
    list_name, campaign = unique("totals"), unique("totals")
    await create_synthetic_list(engine, list_name, contacts=500, seed=31)
    strategy = load_strategy(STRATEGY)
    await create_campaign(engine, campaign, strategy, STRATEGY)
    await set_policy(engine, POLICY, campaign=campaign)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    channels = WatchingCarrier(latency_seconds=0).channels()
    await run_pass(engine, channels, sub, strategy, 1)
    await run_pass(engine, channels, sub, strategy, 2)
    day = campaign_day(datetime.now(UTC), strategy.timezone)
    for number in (1, 2):
        key = PassKey(sub.id, day, number)
        async with driver_connection(engine) as connection:
            counts = await count_pass(connection, key)
        results, reasons, attempted, skipped = await _reference(engine, key)
        assert counts.results == results
        assert counts.skip_reasons == reasons
        assert (counts.attempted, counts.skipped) == (attempted, skipped)
    assert any(reason.startswith("capped:") for reason in reasons)  # the cap did bind


async def test_rows_written_by_sql_are_counted_too(engine: AsyncEngine) -> None:
    """A stop closes the rest of a pass with one INSERT … SELECT: its totals go with it."""
    list_name, campaign = unique("stop-totals"), unique("stop-totals")
    await create_synthetic_list(engine, list_name, contacts=50, seed=32)
    strategy = load_strategy(STRATEGY)
    await create_campaign(engine, campaign, strategy, STRATEGY)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    day = campaign_day(datetime.now(UTC), strategy.timezone)
    key = PassKey(sub.id, day, 1)
    async with driver_connection(engine) as connection:
        await freeze_whole_list(connection, sub, day)
        closed = await skip_remaining(
            connection,
            key,
            campaign_id=sub.campaign_id,
            channel="voice",
            reason="stopped",
            now=datetime.now(UTC),
        )
        counts = await count_pass(connection, key)
    assert closed == 50
    assert counts.skip_reasons == {"stopped": 50}
    assert (counts.attempted, counts.skipped) == (0, 50)


async def test_a_batch_a_crash_settles_and_a_stop_add_up(engine: AsyncEngine) -> None:
    """Recorded batch (attempts, a cap's skip after them, plain skips), then a crash's batch
    in flight settled `unknown`, then the rest skipped: each write keeps the totals exact."""
    list_name, campaign = unique("crash-totals"), unique("crash-totals")
    await create_synthetic_list(engine, list_name, contacts=50, seed=33)
    strategy = load_strategy(STRATEGY)
    await create_campaign(engine, campaign, strategy, STRATEGY)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    day = campaign_day(datetime.now(UTC), strategy.timezone)
    key = PassKey(sub.id, day, 1)
    now = datetime.now(UTC)
    async with driver_connection(engine) as connection:
        ids = await freeze_whole_list(connection, sub, day)
        base = (sub.id, sub.campaign_id, day, 1)
        rows = []
        for n, contact_id in enumerate(ids[:20]):
            if n % 5 == 0:  # skipped before any device
                rows.append(
                    AttemptRow(*base, contact_id, 0, 0, "voice", "skipped", "no_consent", now)
                )
                continue
            rows.append(AttemptRow(*base, contact_id, n, 0, "voice", "busy", None, now))
            if n % 3 == 0:  # then a cap held the next device
                rows.append(
                    AttemptRow(*base, contact_id, 0, 0, "voice", "skipped", "capped:two", now)
                )
            else:
                rows.append(
                    AttemptRow(
                        *base, contact_id, n + 1000, 0, "voice", "delivered_machine", None, now
                    )
                )
        await record_batch(connection, key, rows, 20, start=0)
        await mark_inflight(connection, key, 40)
        settled = await settle_inflight(
            connection, key, campaign_id=sub.campaign_id, channel="voice", now=now
        )
        closed = await skip_remaining(
            connection, key, campaign_id=sub.campaign_id, channel="voice", reason="stopped", now=now
        )
        counts = await count_pass(connection, key)
    assert (settled, closed) == (20, 10)
    results, reasons, attempted, skipped = await _reference(engine, key)
    assert counts.results == results
    assert counts.skip_reasons == reasons == {"no_consent": 4, "capped:two": 5, "stopped": 10}
    assert counts.unknown == 20
    assert (counts.attempted, counts.skipped) == (attempted, skipped) == (36, 14)
