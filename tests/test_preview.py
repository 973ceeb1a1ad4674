"""Strategy preview: the counts equal what plain SQL over the synthetic list says."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.campaigns import campaign_today
from csm.control import start_sub_campaign
from csm.preview import preview_strategy
from csm.settings import Settings
from csm.strategy import load_strategy
from tests.helpers import campaign_with_list, unique
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

CSM = [sys.executable, "-m", "csm.cli"]
ZONE = "America/Chicago"

STRATEGY = f"""
timezone = "{ZONE}"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "everyone"
channel = "voice"

[[passes]]
name = "texts"
channel = "sms"
filter = "has_wireless and consent.sms and not ever('reached')"

[[passes]]
name = "big balances"
channel = "email"
filter = "has_email and attributes.balance >= 500"

[[passes]]
name = "big balances in NY or CA"
channel = "voice"
source = "previous"
filter = "attributes.state in ('NY', 'CA')"

[[passes]]
name = "tomorrow"
channel = "sms"
days_to_wait = 1
"""

#: SQL written independently of the filter compiler: what each pass must select.
MEMBERS = "FROM contacts c JOIN list_members m ON m.contact_id = c.id JOIN lists l ON l.id = m.list_id WHERE l.name = :list"  # noqa: E501
HAS = "EXISTS (SELECT 1 FROM devices d WHERE d.contact_id = c.id AND d.kind = '{}')"
EXPECTED = {
    "everyone": f"SELECT count(*) {MEMBERS}",
    "texts": f"SELECT count(*) {MEMBERS} AND {HAS.format('wireless')} AND c.consent_sms",
    "big balances": f"SELECT count(*) {MEMBERS} AND {HAS.format('email')}"
    " AND (c.attributes->>'balance')::numeric >= 500",
    "big balances in NY or CA": f"SELECT count(*) {MEMBERS} AND {HAS.format('email')}"
    " AND (c.attributes->>'balance')::numeric >= 500 AND c.attributes->>'state' IN ('NY', 'CA')",
}


async def expected_counts(engine: AsyncEngine, list_name: str) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            name: await connection.scalar(text(sql), {"list": list_name})
            for name, sql in EXPECTED.items()
        }


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "COLUMNS": "200"}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


async def test_preview_counts_match_plain_sql(engine: AsyncEngine) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=400, seed=7)
    expected = await expected_counts(engine, list_name)
    assert 0 < expected["big balances in NY or CA"] < expected["big balances"] < 400

    preview = await preview_strategy(engine, list_name=list_name, campaign=campaign)
    assert preview.list_size == 400 and preview.strategy_version == 1
    assert preview.day == campaign_today(ZONE)
    assert {p.name: p.selected for p in preview.passes} == expected
    assert [p.number for p in preview.passes] == [1, 2, 3, 4]
    assert (preview.passes[3].among_pass, preview.passes[3].among_frozen) == (3, False)
    assert [(p.number, p.name, p.day) for p in preview.later] == [
        (5, "tomorrow", preview.day + timedelta(days=1))
    ]

    from_file = await preview_strategy(
        engine, list_name=list_name, strategy=load_strategy(STRATEGY)
    )
    assert {p.name: p.selected for p in from_file.passes} == expected
    assert from_file.strategy_version is None


async def test_preview_command(engine: AsyncEngine, database_url: str, tmp_path: Path) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=150, seed=3)
    expected = await expected_counts(engine, list_name)
    strategy_file = tmp_path / "preview.toml"
    strategy_file.write_text(STRATEGY)

    by_campaign, by_file, table, unknown, neither = await asyncio.gather(
        csm("strategy", "preview", "--campaign", campaign, "--list", list_name, "--json",
            database_url=database_url),
        csm("strategy", "preview", "--strategy", str(strategy_file), "--list", list_name,
            "--json", database_url=database_url),
        csm("strategy", "preview", "-c", campaign, "-l", list_name, database_url=database_url),
        csm("strategy", "preview", "-c", campaign, "-l", list_name + "x",
            database_url=database_url),
        csm("strategy", "preview", "--list", list_name, database_url=database_url),
    )  # fmt: skip
    for result in (by_campaign, by_file, table):
        assert result.returncode == 0, result.stderr
    for result in (by_campaign, by_file):
        shown = json.loads(result.stdout)
        assert [(p["number"], p["name"], p["channel"]) for p in shown["passes"]] == [
            (1, "everyone", "voice"),
            (2, "texts", "sms"),
            (3, "big balances", "email"),
            (4, "big balances in NY or CA", "voice"),
        ]
        assert {p["name"]: p["selected"] for p in shown["passes"]} == expected
    assert f"list '{list_name}': 150 contacts" in table.stdout
    assert "big balances in NY or CA" in table.stdout and "among pass 3" in table.stdout
    assert "pass 5 'tomorrow' is due on" in table.stdout
    assert unknown.returncode == 1
    assert unknown.stderr == (
        f"csm: error: unknown list '{list_name}x' (did you mean '{list_name}'?)\n"
    )
    assert neither.returncode == 1
    assert neither.stderr == (
        "csm: error: give --campaign or --strategy (or --sub-campaign) to preview\n"
    )


LEDGER_STRATEGY = f"""
timezone = "{ZONE}"
[response_groups.reached]
codes = ["delivered_person"]

[[passes]]
name = "call"
channel = "voice"

[[passes]]
name = "retry no answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
after = "1h"

[[passes]]
name = "untouched"
channel = "sms"
filter = "attempts = 0"

[[passes]]
name = "not reached"
channel = "sms"
filter = "not ever('reached')"
"""


async def test_preview_with_a_sub_campaign_reads_its_ledger(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(engine, LEDGER_STRATEGY, contacts=200)
    task_queue = f"preview-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue,
            name=unique("preview"),
        )  # fmt: skip
        async with asyncio.timeout(60):
            while True:
                plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
                if plan.passes and plan.passes[0].status.value == "done":
                    break
                await asyncio.sleep(0.1)
        preview = await preview_strategy(engine, sub_campaign=launched.sub_campaign.workflow_id)
        await launched.handle.execute_update(SubCampaignWorkflow.lifecycle, "stop")
        await launched.handle.result()

    sub_id = launched.sub_campaign.id
    async with engine.connect() as connection:
        latest = """
            SELECT DISTINCT ON (contact_id) contact_id, result FROM attempts
            WHERE sub_campaign_id = :s ORDER BY contact_id, id DESC
        """
        retry = await connection.scalar(
            text(f"SELECT count(*) FROM ({latest}) l WHERE l.result IN ('no_answer', 'busy')"),
            {"s": sub_id},
        )
        untouched = await connection.scalar(
            text(
                "SELECT count(*) FROM list_members m WHERE m.list_id = :l AND NOT EXISTS ("
                " SELECT 1 FROM attempts a WHERE a.sub_campaign_id = :s"
                " AND a.contact_id = m.contact_id AND a.result NOT IN ('skipped', 'not_attempted'))"
            ),
            {"s": sub_id, "l": launched.sub_campaign.list_id},
        )
        reached = await connection.scalar(
            text(
                "SELECT count(DISTINCT contact_id) FROM attempts"
                " WHERE sub_campaign_id = :s AND result = 'delivered_person'"
            ),
            {"s": sub_id},
        )
    counts = {p.name: p.selected for p in preview.passes}
    assert preview.sub_campaign == launched.sub_campaign.name
    assert preview.list_name == list_name and preview.list_size == 200
    assert counts == {
        "call": 200,
        "retry no answers": retry,
        "untouched": untouched,
        "not reached": 200 - reached,
    }
    assert 0 < retry < 200 and 0 < untouched < 200 and 0 < reached < 200
    retry_pass = preview.passes[1]
    assert (retry_pass.among_pass, retry_pass.among_frozen) == (1, True)
