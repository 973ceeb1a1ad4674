"""A sub-campaign end to end on the real dev server, PostgreSQL and SMTP sink."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.control import start_sub_campaign
from csm.devstack.smtp_sink import messages
from csm.settings import Settings
from csm.suppressions import add_suppression
from tests.helpers import campaign_with_list, leaked, personal_values
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

STRATEGY = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "first call"
channel = "voice"

[[passes]]
name = "retry no answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
after = "1s"

[[passes]]
name = "email the rest"
channel = "email"
filter = "not ever('reached')"
template = "Your balance is ${balance}."
subject = "Payment reminder"
"""


async def test_three_passes_complete_exactly(
    client: Client, engine: AsyncEngine, settings: Settings, smtp: tuple[int, Path]
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=300)
    task_queue = f"e2e-{uuid.uuid4().hex[:8]}"
    before = len(messages(smtp[1]))
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 120)
        plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
    assert summary.state == "completed"
    assert [p.status.value for p in plan.passes] == ["done", "done", "done"]
    sub_id = launched.sub_campaign.id
    async with engine.connect() as connection:
        per_pass = dict(
            (
                await connection.execute(
                    text(
                        "SELECT pass_number, count(DISTINCT contact_id) FROM attempts"
                        " WHERE sub_campaign_id = :s GROUP BY pass_number"
                    ),
                    {"s": sub_id},
                )
            ).all()
        )
        selected = dict(
            (
                await connection.execute(
                    text(
                        "SELECT pass_number, count(*) FROM pass_selections"
                        " WHERE sub_campaign_id = :s"
                        " GROUP BY pass_number"
                    ),
                    {"s": sub_id},
                )
            ).all()
        )
        duplicates = await connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM attempts WHERE sub_campaign_id = :s"
                " GROUP BY pass_number, contact_id, device_id, try_number HAVING count(*) > 1) d"
            ),
            {"s": sub_id},
        )
        emails_sent = await connection.scalar(
            text(
                "SELECT count(*) FROM attempts WHERE sub_campaign_id = :s AND pass_number = 3"
                " AND result = 'success'"
            ),
            {"s": sub_id},
        )
        reached_on_retry = await connection.scalar(
            text(
                "SELECT count(DISTINCT contact_id) FROM attempts WHERE sub_campaign_id = :s"
                " AND pass_number = 2 AND result = 'delivered_person'"
            ),
            {"s": sub_id},
        )
        retry_ok = await connection.scalar(
            text(
                """SELECT count(*) FROM pass_selections s WHERE s.sub_campaign_id = :s
               AND s.pass_number = 2 AND s.contact_id NOT IN (
                 SELECT contact_id FROM pass_selections WHERE sub_campaign_id = :s
                 AND pass_number = 1)"""
            ),
            {"s": sub_id},
        )
    assert selected[1] == 300
    assert per_pass == selected  # every selected contact ends each pass with a row
    assert duplicates == 0
    assert retry_ok == 0  # source = previous: pass 2 chose only among pass 1's contacts
    assert 0 < selected[2] < 300
    # The retry pass draws afresh, so it reaches some of those pass 1 did not.
    assert 0 < reached_on_retry < selected[2]
    assert plan.passes[2].counts.results.get("success", 0) == emails_sent
    new_mail = messages(smtp[1])[before:]
    assert len(new_mail) == emails_sent > 0
    body = new_mail[0].read_text()
    assert "Subject: Payment reminder" in body
    assert re.search(r"Your balance is \d+(\.\d+)?\.", body)  # rendered from the attributes

    history = (await launched.handle.fetch_history()).to_json()
    assert leaked(await personal_values(engine, list_name), history) == []


RETRIES = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person"]

[[passes]]
name = "call with retries"
channel = "voice"
retries = { per_device = 2, gap = "1s" }
"""


async def test_retries_try_only_retryable_devices_after_the_gap(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, RETRIES, contacts=300, seed=5)
    task_queue = f"retries-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        summary = await asyncio.wait_for(launched.handle.result(), 120)
    assert summary.state == "completed"
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT contact_id, device_id, try_number, result, attempted_at FROM attempts"
                    " WHERE sub_campaign_id = :s ORDER BY try_number"
                ),
                {"s": launched.sub_campaign.id},
            )
        ).all()
    by_try: dict[int, dict[tuple[int, int], tuple[str, object]]] = {0: {}, 1: {}, 2: {}}
    for contact, device, try_number, result, at in rows:
        assert (contact, device) not in by_try[try_number]  # never twice in one try
        by_try[try_number][(contact, device)] = (result, at)
    assert by_try[1] and by_try[2]
    retryable = {"busy", "no_answer", "not_connected", "failed"}
    for later in (1, 2):
        for (contact, device), (_, at) in by_try[later].items():
            earlier_result, earlier_at = by_try[later - 1][(contact, device)]
            assert earlier_result in retryable
            assert (at - earlier_at).total_seconds() >= 1.0  # the minimum gap held
            reached = [
                r
                for (c, _), (r, _) in by_try[later - 1].items()
                if c == contact
                and r not in retryable | {"bad_device", "undelivered_machine", "bounced"}
            ]
            assert reached == []


ONE_VOICE = """
timezone = "America/Chicago"
[[passes]]
name = "call"
channel = "voice"
"""


async def test_suppressed_accounts_and_devices_are_skipped_with_the_reason(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, ONE_VOICE, contacts=50, seed=9)
    async with engine.connect() as connection:
        members = (
            await connection.execute(
                text(
                    "SELECT c.account_key, c.id FROM contacts c"
                    " JOIN list_members m ON m.contact_id = c.id"
                    " JOIN lists l ON l.id = m.list_id WHERE l.name = :n ORDER BY c.id"
                ),
                {"n": list_name},
            )
        ).all()
        phones = (
            await connection.execute(
                text(
                    "SELECT contact_id, array_agg(value) FROM devices WHERE contact_id = ANY(:ids)"
                    " AND kind IN ('wireless', 'landline') GROUP BY contact_id"
                ),
                {"ids": [i for _, i in members]},
            )
        ).all()
    account_key, suppressed_contact = members[0]
    other_contact, numbers = next((c, n) for c, n in phones if c != suppressed_contact)
    await add_suppression(engine, account=account_key, reason="do_not_contact")
    for number in numbers:  # every phone of another contact, in this campaign only
        await add_suppression(engine, phone=number, campaign=campaign)
    queue = f"suppress-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=queue
        )
        await asyncio.wait_for(launched.handle.result(), 60)
    async with engine.connect() as connection:
        rows = dict(
            (
                await connection.execute(
                    text(
                        "SELECT contact_id, skip_reason FROM attempts WHERE sub_campaign_id = :s"
                        " AND contact_id = ANY(:c)"
                    ),
                    {"s": launched.sub_campaign.id, "c": [suppressed_contact, other_contact]},
                )
            ).all()
        )
    assert rows == {suppressed_contact: "suppressed", other_contact: "suppressed"}
