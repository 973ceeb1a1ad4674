"""Policy versions in the database: the global policy and campaign overrides, with history.

Nothing is ever overwritten: `csm policy set` adds a version, and the latest
version of each scope is in force from the next batch of every running pass.
With no global version stored, the built-in default applies (08:00-21:00).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.compliance.policy import ContactPolicy, PolicyError, merge_policy, parse_policy_text
from csm.database import driver_connection

if TYPE_CHECKING:
    from csm.pooled import Connection

_LATEST = """
SELECT DISTINCT ON (coalesce(campaign_id, 0)) campaign_id, definition::text AS definition
FROM policies WHERE campaign_id IS NULL OR campaign_id = $1
ORDER BY coalesce(campaign_id, 0), version DESC
"""


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version of the global policy (campaign None) or a campaign's override."""

    campaign: str | None
    version: int
    author: str
    created_at: datetime
    source: str
    sections: dict[str, Any]


async def load_policy(connection: Connection, campaign_id: int | None) -> ContactPolicy:
    """The policy in force for a campaign now: its override's sections over the global ones."""
    rows = await connection.fetch(_LATEST, campaign_id or 0)
    global_sections: dict[str, Any] = {}
    campaign_sections: dict[str, Any] = {}
    for row in rows:
        target = global_sections if row["campaign_id"] is None else campaign_sections
        target.update(json.loads(row["definition"]))
    return merge_policy(global_sections, campaign_sections)


async def _campaign_id(connection: Connection, campaign: str | None) -> int | None:
    if campaign is None:
        return None
    campaign_id = await connection.fetchval("SELECT id FROM campaigns WHERE name = $1", campaign)
    if campaign_id is None:
        raise PolicyError(f"no campaign named {campaign!r}")
    return campaign_id


async def set_policy(
    engine: AsyncEngine, text: str, *, campaign: str | None = None, author: str = ""
) -> int:
    """Validate the policy text and store it as the scope's next version; returns the version."""
    sections = parse_policy_text(text)
    async with driver_connection(engine) as connection, connection.transaction():
        campaign_id = await _campaign_id(connection, campaign)
        await connection.execute("LOCK TABLE policies IN SHARE ROW EXCLUSIVE MODE")
        version = await connection.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM policies"
            " WHERE coalesce(campaign_id, 0) = coalesce($1::int, 0)",
            campaign_id,
        )
        await connection.execute(
            "INSERT INTO policies (campaign_id, version, source, definition, author)"
            " VALUES ($1, $2, $3, $4::jsonb, $5)",
            campaign_id,
            version,
            text,
            json.dumps(sections),
            author,
        )
        return version


async def effective_policy(engine: AsyncEngine, campaign: str | None = None) -> ContactPolicy:
    async with driver_connection(engine) as connection:
        return await load_policy(connection, await _campaign_id(connection, campaign))


async def policy_history(engine: AsyncEngine, campaign: str | None = None) -> list[PolicyVersion]:
    """Every stored version of the scope, newest first."""
    async with driver_connection(engine) as connection:
        campaign_id = await _campaign_id(connection, campaign)
        rows = await connection.fetch(
            "SELECT version, author, created_at, source, definition::text AS definition"
            " FROM policies WHERE coalesce(campaign_id, 0) = coalesce($1::int, 0)"
            " ORDER BY version DESC",
            campaign_id,
        )
    return [
        PolicyVersion(
            campaign=campaign,
            version=row["version"],
            author=row["author"],
            created_at=row["created_at"],
            source=row["source"],
            sections=json.loads(row["definition"]),
        )
        for row in rows
    ]
