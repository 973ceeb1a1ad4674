"""Lists shared across campaigns: final outcomes, list priority, suppressions that act at once."""

from __future__ import annotations

import asyncio
import uuid

from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.campaigns import create_campaign
from csm.channels import Channels
from csm.channels.email import SmtpEmail
from csm.compliance.store import set_policy
from csm.control import start_sub_campaign
from csm.settings import Settings
from csm.smtp import SmtpConfig
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.suppressions import add_suppression
from csm.synthetic import create_synthetic_list
from csm.testing.servers import free_port
from csm.vocabulary import Channel
from tests.compliance_helpers import WatchingCarrier, first_attempt, rows_of, run_pass
from tests.helpers import unique
from worker import build_worker

FINAL_STRATEGY = """
timezone = "America/New_York"
[response_groups.talked]
codes = ["delivered_person"]
final = "all_campaigns"
[response_groups.message_left]
codes = ["delivered_machine"]
final = "campaign"

[[passes]]
name = "call"
channel = "voice"

[[passes]]
name = "call again"
channel = "voice"
"""
ONE_PASS = """
timezone = "America/New_York"

[[passes]]
name = "call"
channel = "voice"
"""


async def _outcomes(engine: AsyncEngine, sub_id: int, pass_number: int) -> dict[int, set[str]]:
    """Per contact: the results and skip reasons of one pass."""
    found: dict[int, set[str]] = {}
    for contact_id, result, reason in await rows_of(
        engine,
        "SELECT contact_id, result, skip_reason FROM attempts"
        " WHERE sub_campaign_id = :s AND pass_number = :p",
        s=sub_id,
        p=pass_number,
    ):
        found.setdefault(contact_id, set()).add(reason or result)
    return found


async def test_final_groups_stop_this_campaign_or_every_campaign(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    list_name = unique("final")
    await create_synthetic_list(engine, list_name, contacts=400, seed=5)
    first, second = unique("final-a"), unique("final-b")
    await create_campaign(engine, first, load_strategy(FINAL_STRATEGY), FINAL_STRATEGY)
    await create_campaign(engine, second, load_strategy(ONE_PASS), ONE_PASS)
    task_queue = f"final-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        a = await start_sub_campaign(
            client, engine, campaign=first, list_name=list_name, task_queue=task_queue
        )
        await asyncio.wait_for(a.handle.result(), 120)
        b = await start_sub_campaign(
            client, engine, campaign=second, list_name=list_name, task_queue=task_queue
        )
        await asyncio.wait_for(b.handle.result(), 120)
    call = await _outcomes(engine, a.sub_campaign.id, 1)
    talked = {c for c, outcomes in call.items() if "delivered_person" in outcomes}
    message_left = {c for c, outcomes in call.items() if "delivered_machine" in outcomes}
    assert talked and message_left
    again = await _outcomes(engine, a.sub_campaign.id, 2)
    elsewhere = await _outcomes(engine, b.sub_campaign.id, 1)
    # In the campaign that reached them, both groups end contact...
    assert all(again[c] == {"final"} for c in talked | message_left)
    # ...in every other campaign only the `all_campaigns` group does.
    assert all(elsewhere[c] == {"final_elsewhere"} for c in talked)
    assert all("final_elsewhere" not in elsewhere[c] for c in message_left)
    assert any("delivered_machine" in elsewhere[c] for c in message_left)
    recorded = await rows_of(
        engine,
        "SELECT group_name, scope, count(*) FROM final_outcomes WHERE campaign_id = :c"
        " GROUP BY group_name, scope ORDER BY group_name",
        c=a.sub_campaign.campaign_id,
    )
    # Pass 2 draws afresh, so it reaches some of those pass 1 missed: their groups are final too.
    talked |= {c for c, outcomes in again.items() if "delivered_person" in outcomes}
    message_left |= {c for c, outcomes in again.items() if "delivered_machine" in outcomes}
    assert recorded == [
        ("message_left", "campaign", len(message_left)),
        ("talked", "all_campaigns", len(talked)),
    ]


ONE_A_WEEK = """
[hours]
voice = "any"
[[caps]]
name = "one_a_week"
max = 1
period = "7d"
channels = ["voice"]
"""
PACED = """
timezone = "America/New_York"

[[passes]]
name = "call"
channel = "voice"
pacing = { per_minute = 3000, concurrency = 4 }
"""


async def test_the_higher_priority_campaign_goes_first_under_a_shared_cap(
    engine: AsyncEngine,
) -> None:
    """The high-priority pass starts first and is slow; the low one starts while it runs.

    Rule: an account still ahead of a running higher-priority pass is `reserved` for it;
    once that pass attempted it, the shared cap (one a week) holds the low one off.
    """
    list_name = unique("prio")
    await create_synthetic_list(engine, list_name, contacts=300, seed=9)
    high, low = unique("high"), unique("low")
    paced, unpaced = load_strategy(PACED), load_strategy(ONE_PASS)
    await create_campaign(engine, high, paced, PACED, priority=10)
    await create_campaign(engine, low, unpaced, ONE_PASS)
    for name in (high, low):
        await set_policy(engine, ONE_A_WEEK, campaign=name)
    high_sub = await register_sub_campaign(engine, campaign=high, list_name=list_name)
    low_sub = await register_sub_campaign(engine, campaign=low, list_name=list_name)
    carrier = WatchingCarrier(latency_seconds=0)
    high_run = asyncio.ensure_future(run_pass(engine, carrier.channels(), high_sub, paced, 1))
    await first_attempt(engine, high_sub.id)
    low_counts = await run_pass(engine, carrier.channels(), low_sub, unpaced, 1)
    high_counts = await asyncio.wait_for(high_run, 60)
    assert low_counts.attempted == 0
    assert low_counts.skip_reasons["reserved"] > 0
    assert low_counts.skip_reasons["capped:one_a_week"] > 0
    eligible = high_counts.selected - high_counts.skip_reasons.get("no_consent", 0)
    assert high_counts.attempted == eligible  # the high-priority campaign lost none
    assert carrier.overlaps == []


SLOW = """
timezone = "America/New_York"

[[passes]]
name = "call"
channel = "voice"
pacing = { per_minute = 1200, concurrency = 2 }
"""


async def test_a_suppression_added_while_a_pass_runs_stops_attempts(engine: AsyncEngine) -> None:
    list_name, campaign = unique("supp"), unique("supp")
    await create_synthetic_list(engine, list_name, contacts=120, seed=3)
    strategy = load_strategy(SLOW)
    await create_campaign(engine, campaign, strategy, SLOW)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    carrier = WatchingCarrier(latency_seconds=0)
    running = asyncio.ensure_future(run_pass(engine, carrier.channels(), sub, strategy, 1))
    await first_attempt(engine, sub.id)
    # The last two consenting contacts in the pass's order: one by account, one by its phones.
    (by_account, account_key), (by_phone, _) = await rows_of(
        engine,
        "SELECT c.id, c.account_key FROM pass_selections s JOIN contacts c ON c.id = s.contact_id"
        " WHERE s.sub_campaign_id = :s AND c.consent_voice ORDER BY s.seq DESC LIMIT 2",
        s=sub.id,
    )
    await add_suppression(engine, account=account_key)
    for (phone,) in await rows_of(
        engine, "SELECT value FROM devices WHERE contact_id = :c AND kind <> 'email'", c=by_phone
    ):
        await add_suppression(engine, phone=phone, campaign=campaign)
    counts = await asyncio.wait_for(running, 60)
    outcomes = await _outcomes(engine, sub.id, 1)
    assert outcomes[by_account] == {"suppressed"}
    assert outcomes[by_phone] == {"suppressed"}
    assert counts.skip_reasons["suppressed"] == 2
    assert counts.attempted > 100


TEXTS = """
timezone = "America/New_York"

[[passes]]
name = "text"
channel = "sms"
template = "Your payment is due."

[[passes]]
name = "text again"
channel = "sms"
template = "Reminder: your payment is due."
"""


async def test_a_stop_reply_opts_the_number_out_of_every_campaign(engine: AsyncEngine) -> None:
    list_name, campaign = unique("stop"), unique("stop")
    await create_synthetic_list(engine, list_name, contacts=400, seed=4)
    strategy = load_strategy(TEXTS)
    await create_campaign(engine, campaign, strategy, TEXTS)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    channels = WatchingCarrier(latency_seconds=0).channels()
    await run_pass(engine, channels, sub, strategy, 1)
    stopped = await rows_of(
        engine,
        "SELECT a.contact_id, d.value FROM attempts a JOIN devices d ON d.id = a.device_id"
        " WHERE a.sub_campaign_id = :s AND a.result = 'opted_out'",
        s=sub.id,
    )
    assert stopped  # the simulator's recipients reply STOP now and then
    suppressed = await rows_of(
        engine,
        "SELECT value FROM suppressions WHERE reason = 'stop_reply' AND campaign_id IS NULL"
        " AND value = ANY(:v)",
        v=[value for _, value in stopped],
    )
    assert len(suppressed) == len(stopped)
    await run_pass(engine, channels, sub, strategy, 2)
    again = await _outcomes(engine, sub.id, 2)
    assert all(again[contact] == {"suppressed"} for contact, _ in stopped)


class Refusing:
    """An SMTP server that refuses some recipients for good (550) and accepts the rest."""

    def __init__(self, refused: set[str]):
        self.refused = refused

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refused:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 accepted"


MAILS = """
timezone = "America/New_York"

[[passes]]
name = "mail"
channel = "email"
template = "Your payment is due."
subject = "Reminder"

[[passes]]
name = "mail again"
channel = "email"
template = "Your payment is due."
subject = "Reminder"
"""


async def test_a_hard_bounce_invalidates_the_address(engine: AsyncEngine) -> None:
    list_name, campaign = unique("bounce"), unique("bounce")
    await create_synthetic_list(engine, list_name, contacts=60, seed=6)
    strategy = load_strategy(MAILS)
    await create_campaign(engine, campaign, strategy, MAILS)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    addresses = await rows_of(
        engine,
        "SELECT d.contact_id, d.value FROM devices d JOIN list_members m"
        " ON m.contact_id = d.contact_id JOIN contacts c ON c.id = d.contact_id"
        " WHERE m.list_id = :l AND d.kind = 'email' AND c.consent_email ORDER BY d.id LIMIT 5",
        l=sub.list_id,
    )
    refused = {value for _, value in addresses}
    port = free_port()
    controller = Controller(Refusing(refused), hostname="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=port), connections=2)
    try:
        channels = Channels({Channel.EMAIL: email})
        first = await run_pass(engine, channels, sub, strategy, 1)
        second = await run_pass(engine, channels, sub, strategy, 2)
    finally:
        await email.close()
        controller.stop()
    assert first.results["bounced"] == len(refused)
    invalid = await rows_of(
        engine,
        "SELECT value FROM suppressions WHERE reason = 'hard_bounce' AND value = ANY(:v)",
        v=sorted(refused),
    )
    assert {value for (value,) in invalid} == refused
    again = await _outcomes(engine, sub.id, 2)
    assert all(again[contact] == {"suppressed"} for contact, _ in addresses)
    assert "bounced" not in second.results
