"""`csm contacts history`: one account's attempts across campaigns, caps in use, pause,
final outcomes and suppressions, from rows written straight into the ledger."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign
from csm.compliance.caps import CapRules, PastAttempt, blocking_rule
from csm.compliance.store import effective_policy, set_policy
from csm.contact_history import UnknownAccountError, contact_history
from csm.database import driver_connection
from csm.strategy import load_strategy
from csm.synthetic import create_synthetic_list
from tests.helpers import unique

CSM = [sys.executable, "-m", "csm.cli"]
CAPPED = "capped:reg_f_7_in_7"

STRATEGY = """
timezone = "America/Chicago"

[response_groups.reached]
codes = ["delivered_person", "agent_connected"]

[[passes]]
name = "voice"
channel = "voice"
"""

POLICY_A = """
[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]

[[caps]]
name = "sms_2_a_day"
max = 2
channels = ["sms"]
per = "device"

[[caps]]
name = "zz_only"
max = 1
states = ["ZZ"]

[conversation_pause]
days = 7
"""

POLICY_B = """
[[caps]]
name = "b_voice_3"
max = 3
period = "24h"
channels = ["voice"]
"""


@dataclass(frozen=True)
class Account:
    key: str
    contact_id: int
    zone: ZoneInfo
    wireless: str
    email: str | None
    campaign_a: str
    campaign_b: str
    sub_campaign: str
    anchor: datetime  # noon on the contact's clock, in the past


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "260", "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


def noon_before(now: datetime, zone: ZoneInfo) -> datetime:
    """The latest noon on the contact's clock that is not after `now`."""
    local = now.astimezone(zone)
    noon = datetime.combine(local.date(), time(12), tzinfo=zone)
    if noon > local:
        noon = datetime.combine(local.date() - timedelta(days=1), time(12), tzinfo=zone)
    return noon.astimezone(UTC)


@pytest.fixture(scope="module")
async def account(engine: AsyncEngine) -> Account:
    """An account worked by two campaigns, with a final outcome and two suppressions."""
    a, b = unique("hist-a"), unique("hist-b")
    definition = load_strategy(STRATEGY)
    await create_campaign(engine, a, definition, STRATEGY)
    await create_campaign(engine, b, definition, STRATEGY, priority=3)
    await set_policy(engine, POLICY_A, campaign=a, author="tests")
    await set_policy(engine, POLICY_B, campaign=b, author="tests")
    list_name = unique("hist-list")
    await create_synthetic_list(engine, list_name, contacts=3, seed=11)

    async with driver_connection(engine) as connection:
        contact = await connection.fetchrow(
            "SELECT c.id, c.account_key, c.timezone FROM contacts c"
            " JOIN list_members m ON m.contact_id = c.id JOIN lists l ON l.id = m.list_id"
            " WHERE l.name = $1 ORDER BY c.id LIMIT 1",
            list_name,
        )
        devices = {
            row["kind"]: (row["id"], row["value"])
            for row in await connection.fetch(
                "SELECT id, kind, value FROM devices WHERE contact_id = $1", contact["id"]
            )
        }
        ids = await connection.fetchrow(
            "SELECT (SELECT id FROM campaigns WHERE name = $1) AS a,"
            " (SELECT id FROM campaigns WHERE name = $2) AS b,"
            " (SELECT id FROM lists WHERE name = $3) AS list",
            a,
            b,
            list_name,
        )
        sub_name = unique("march")
        sub_id = await connection.fetchval(
            "INSERT INTO sub_campaigns (campaign_id, list_id, name, workflow_id, state)"
            " VALUES ($1, $2, $3, $4, 'completed') RETURNING id",
            ids["a"],
            ids["list"],
            sub_name,
            f"subcampaign-{a}-{sub_name}",
        )
        zone = ZoneInfo(contact["timezone"])
        anchor = noon_before(datetime.now(UTC), zone)
        w, wireless = devices["wireless"]
        email_id, email = devices.get("email", (None, None))
        orphan_sub = 2_000_000_000  # no such sub-campaign: its name shows as unknown
        # (ago, campaign, sub-campaign, pass, try, channel, device id, result, skip reason)
        rows = [
            (timedelta(days=8), "a", sub_id, 1, 1, "voice", w, "delivered_person", None),
            (timedelta(days=3), "a", sub_id, 1, 1, "voice", w, "no_answer", None),
            (timedelta(days=2), "b", orphan_sub, 1, 1, "dialer", w, "agent_connected", None),
            (timedelta(hours=20), "a", sub_id, 1, 1, "voice", w, "busy", None),
            (timedelta(hours=20), "a", sub_id, 2, 1, "sms", w, "success", None),
            (timedelta(hours=19), "a", sub_id, 6, 1, "voice", w, "skipped", None),
            (timedelta(hours=2), "a", sub_id, 3, 1, "sms", w, "success", None),
            (timedelta(hours=1), "a", sub_id, 3, 2, "sms", w, "success", None),
            (timedelta(minutes=30), "a", sub_id, 3, 3, "sms", w, "not_attempted", None),
            (timedelta(minutes=10), "a", sub_id, 4, 1, "voice", 0, "skipped", CAPPED),
        ]  # fmt: skip
        if email_id:
            rows.append(
                (timedelta(minutes=5), "a", sub_id, 5, 1, "email", email_id, "success", None)
            )
        await connection.executemany(
            "INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,"
            " device_id, try_number, channel, result, skip_reason, attempted_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [
                (
                    sub, ids[campaign], (anchor - ago).astimezone(zone).date(), pass_number,
                    # the ledger numbers tries (rounds) from 0; people read them from 1
                    contact["id"], device, try_number - 1, channel, result, reason, anchor - ago,
                )
                for ago, campaign, sub, pass_number, try_number, channel, device, result, reason
                in rows
            ],
        )  # fmt: skip
        await connection.execute(
            "INSERT INTO final_outcomes (contact_id, campaign_id, group_name, scope, reached_at)"
            " VALUES ($1, $2, 'promise', 'all_campaigns', $3)",
            contact["id"],
            ids["b"],
            anchor - timedelta(days=2),
        )
        await connection.executemany(
            "INSERT INTO suppressions (campaign_id, kind, value, reason) VALUES ($1, $2, $3, $4)",
            [
                (None, "account", contact["account_key"], "do_not_contact"),
                (ids["a"], "phone", wireless, "opt_out"),
                (None, "phone", "+15555550100" + contact["account_key"][-4:], "unrelated"),
            ],
        )
    return Account(
        key=contact["account_key"],
        contact_id=contact["id"],
        zone=zone,
        wireless=wireless,
        email=email,
        campaign_a=a,
        campaign_b=b,
        sub_campaign=sub_name,
        anchor=anchor,
    )


async def test_history_attempts_oldest_first(engine: AsyncEngine, account: Account) -> None:
    history = await contact_history(engine, account.key, now=account.anchor)
    assert history.contact_id == account.contact_id
    assert [a.attempted_at for a in history.attempts] == sorted(
        a.attempted_at for a in history.attempts
    )
    first, *_, last_voice_skip = [a for a in history.attempts if a.channel == "voice"]
    assert (first.campaign, first.sub_campaign, first.result) == (
        account.campaign_a,
        account.sub_campaign,
        "delivered_person",
    )
    assert (first.device_kind, first.device_value) == ("wireless", account.wireless)
    assert first.attempted_at == account.anchor - timedelta(days=8)
    dialer = next(a for a in history.attempts if a.channel == "dialer")
    assert (dialer.campaign, dialer.sub_campaign) == (account.campaign_b, None)
    assert last_voice_skip.device_id == 0 and last_voice_skip.device_value is None
    assert last_voice_skip.skip_reason == "capped:reg_f_7_in_7"
    assert len(history.attempts) == 10 + (account.email is not None)


async def test_caps_usage_counts_like_the_gate(engine: AsyncEngine, account: Account) -> None:
    history = await contact_history(engine, account.key, now=account.anchor)
    assert [p.campaign for p in history.policies] == [account.campaign_a, account.campaign_b]
    a, b = history.policies
    usage = {(u.cap.name, u.device): u for u in a.caps}
    reg_f = usage[("reg_f_7_in_7", None)]
    # 3 days ago (voice), 2 days ago (dialer, other campaign), 20 h ago (voice); the
    # 8-day-old call is outside the period, and skips and `skipped` results never count.
    assert reg_f.words() == "3 of 7 in 7d (voice, dialer)"
    assert not reg_f.at_cap
    sms = usage[("sms_2_a_day", account.wireless)]
    assert sms.words() == f"2 of 2 today on {account.wireless} (sms)"  # yesterday's text: no
    assert sms.at_cap
    assert [d for name, d in usage if name == "sms_2_a_day"] == [account.wireless]  # phones only
    zz = usage[("zz_only", None)]
    assert not zz.holds_contact and not zz.at_cap
    assert [u.words() for u in b.caps] == ["1 of 3 in 24h (voice)"]
    assert b.pause is None  # campaign b's override names only caps; the baseline has no pause

    pause = a.pause
    assert pause is not None and pause.holds
    assert pause.last_conversation == account.anchor - timedelta(days=2)
    assert pause.until == account.anchor + timedelta(days=5)

    # The same numbers the pass's gate decides by: blocked exactly when at the cap.
    counted = [
        PastAttempt(x.attempted_at, x.channel, x.device_value, x.result)
        for x in history.attempts
        if x.counts
    ]
    policy_a = await effective_policy(engine, account.campaign_a)
    assert (
        blocking_rule(
            CapRules.of(policy_a.model_copy(update={"conversation_pause": None})),
            counted,
            channel="sms",
            device=account.wireless,
            at=account.anchor,
            zone=account.zone,
        )
        == "sms_2_a_day"
    )
    assert blocking_rule(
        CapRules.of(policy_a), counted, channel="voice", device=account.wireless, at=account.anchor,
        zone=account.zone,
    ) == "conversation_pause"  # fmt: skip

    # Nine days on, the pause is over and only what is left in the periods counts.
    later = await contact_history(engine, account.key, now=account.anchor + timedelta(days=9))
    a_later = later.policies[0]
    assert not a_later.pause.holds
    assert {u.cap.name: u.used for u in a_later.caps}["reg_f_7_in_7"] == 0


async def test_finals_and_suppressions(engine: AsyncEngine, account: Account) -> None:
    history = await contact_history(engine, account.key, now=account.anchor)
    (final,) = history.final_outcomes
    assert (final.campaign, final.group, final.scope) == (
        account.campaign_b,
        "promise",
        "all_campaigns",
    )
    found = {(s.kind, s.value, s.campaign, s.reason) for s in history.suppressions}
    assert found == {
        ("account", account.key, None, "do_not_contact"),
        ("phone", account.wireless, account.campaign_a, "opt_out"),
    }


async def test_unknown_account_and_no_history(engine: AsyncEngine, database_url: str) -> None:
    with pytest.raises(UnknownAccountError, match="unknown account 'nobody-"):
        await contact_history(engine, unique("nobody"))
    result = await csm("contacts", "history", "nobody-here", database_url=database_url)
    assert result.returncode == 1
    assert result.stderr == ("csm: error: unknown account 'nobody-here': no contact has that key\n")
    assert result.stdout == ""

    list_name = unique("quiet")
    await create_synthetic_list(engine, list_name, contacts=1, seed=5)
    async with driver_connection(engine) as connection:
        key = await connection.fetchval(
            "SELECT c.account_key FROM contacts c JOIN list_members m ON m.contact_id = c.id"
            " JOIN lists l ON l.id = m.list_id WHERE l.name = $1",
            list_name,
        )
    quiet = await contact_history(engine, key)
    assert quiet.attempts == [] and quiet.final_outcomes == [] and quiet.suppressions == []
    (only,) = quiet.policies
    assert only.campaign is None  # no campaign in the history: the global policy
    table = await csm("contacts", "history", key, database_url=database_url)
    assert table.returncode == 0, table.stderr
    assert "attempts: none" in table.stdout and "suppressions: none" in table.stdout


async def test_cli_shows_the_same(engine: AsyncEngine, database_url: str, account: Account) -> None:
    as_json = await csm("contacts", "history", account.key, "--json", database_url=database_url)
    assert as_json.returncode == 0, as_json.stderr
    shown = json.loads(as_json.stdout)
    now = datetime.fromisoformat(shown["now"])
    assert shown == (await contact_history(engine, account.key, now=now)).as_json()
    (reg_f,) = [c for c in shown["caps_applied"][0]["caps"] if c["cap"] == "reg_f_7_in_7"]
    assert reg_f["usage"] == "3 of 7 in 7d (voice, dialer)"
    assert shown["caps_applied"][0]["conversation_pause"]["holds"] is True
    assert shown["attempts"][0]["device_value"] == account.wireless
    assert [a["try"] for a in shown["attempts"] if a["pass_number"] == 3] == [1, 2, 3]

    table = await csm("contacts", "history", account.key, database_url=database_url)
    assert table.returncode == 0, table.stderr
    for text in (
        f"account {account.key} (contact {account.contact_id})",
        account.sub_campaign,
        account.wireless,
        "capped:reg_f_7_in_7",
        "3 of 7 in 7d (voice, dialer)",
        "not for state",
        "holds until",
        "promise",
        "all_campaigns",
        "all campaigns",
        "opt_out",
    ):
        assert text in table.stdout, text
    assert "unrelated" not in table.stdout
