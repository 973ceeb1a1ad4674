"""Shared test helpers: campaigns from strategy text, synthetic lists, history checks."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import date

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign
from csm.strategy import load_strategy
from csm.subcampaigns import SubCampaignRef
from csm.synthetic import create_synthetic_list
from workflows.subcampaign import PlanView, SubCampaignWorkflow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def campaign_with_list(
    engine: AsyncEngine, strategy_toml: str, *, contacts: int, seed: int = 1
) -> tuple[str, str]:
    """A new campaign with the strategy and a new synthetic list; (campaign, list) names."""
    campaign, list_name = unique("camp"), unique("list")
    definition = load_strategy(strategy_toml)
    await create_campaign(engine, campaign, definition, strategy_toml)
    await create_synthetic_list(engine, list_name, contacts=contacts, seed=seed)
    return campaign, list_name


async def personal_values(engine: AsyncEngine, list_name: str) -> set[str]:
    """Every phone number, e-mail address, account key and attribute value of the list."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                """
            SELECT d.value FROM devices d JOIN list_members m ON m.contact_id = d.contact_id
              JOIN lists l ON l.id = m.list_id WHERE l.name = :n
            UNION SELECT c.account_key FROM contacts c JOIN list_members m ON m.contact_id = c.id
              JOIN lists l ON l.id = m.list_id WHERE l.name = :n
            UNION SELECT a.value FROM contacts c JOIN list_members m ON m.contact_id = c.id
              JOIN lists l ON l.id = m.list_id, jsonb_each_text(c.attributes) a
              WHERE l.name = :n
            """
            ),
            {"n": list_name},
        )
        return {value for (value,) in rows if value and len(value) >= 4}


def leaked(values: set[str], history_json: str) -> list[str]:
    """The values that appear in a history, not as digits inside a longer number: a balance
    of 57.72 inside a timestamp's "20:13:57.723Z" is no leak (it failed CI once)."""
    return sorted(
        value for value in values if re.search(rf"(?<![\w.]){re.escape(value)}(?!\w)", history_json)
    )


async def wait_for_plan(handle, predicate: Callable[[PlanView], bool], what: str) -> PlanView:
    """Poll the `plan` query until `predicate` holds (a minute at most)."""
    try:
        async with asyncio.timeout(60):
            while True:
                plan = await handle.query(SubCampaignWorkflow.plan_query)
                if plan.passes and predicate(plan):
                    return plan
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def freeze_whole_list(
    connection: asyncpg.Connection, sub: SubCampaignRef, day: date
) -> list[int]:
    """Pass 1's selection frozen by hand (every list member, in contact id order) with its
    cursor at 0, as `run_pass` leaves it before the first batch; the contact ids, sorted.

    For tests that write the ledger directly (batches, settles, skips) without a pass."""
    rows = await connection.fetch(
        "INSERT INTO pass_selections (sub_campaign_id, day, pass_number, round, seq,"
        " contact_id) SELECT $1, $2, 1, 0, row_number() OVER (ORDER BY contact_id),"
        " contact_id FROM list_members WHERE list_id = $3 RETURNING contact_id",
        sub.id,
        day,
        sub.list_id,
    )
    await connection.execute(
        "INSERT INTO pass_progress (sub_campaign_id, day, pass_number, round, selected,"
        " cursor, finished, updated_at) VALUES ($1, $2, 1, 0, $3, 0, false, now())",
        sub.id,
        day,
        len(rows),
    )
    return sorted(r[0] for r in rows)
