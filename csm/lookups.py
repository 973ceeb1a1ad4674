"""Small reads on plain asyncpg, for an engine's pool or one connection alike.

`csm status` must start in a fraction of a second (issue 13), and SQLAlchemy's
asyncio layer, SQLModel and the table classes cost it more than everything else
together. So the reads behind a sub-campaign's live status (which sub-campaign a
reference names, its campaign's time zone, the ledger's counts, agent
utilisation) are plain parameterised SQL that takes a `Db`: an engine, as the
worker, the web page and scripts hold one, or a bare asyncpg connection, as
`csm status` opens one. The SQL exists once, for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from csm.errors import CsmError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

#: An engine (its pool lends the connection) or one asyncpg connection of the caller's.
Db: TypeAlias = "AsyncEngine | asyncpg.Connection"

#: Session settings of every csm connection: csm's queries are short and parameterised, and
#: PostgreSQL's JIT compiling one (tens of ms, measured) costs more than it runs.
SERVER_SETTINGS = {"jit": "off"}


class SubCampaignError(CsmError):
    """A sub-campaign that cannot be registered or found."""


@dataclass(frozen=True)
class SubCampaignRef:
    """What a workflow needs to find its sub-campaign: ids and names only."""

    id: int
    campaign_id: int
    campaign: str
    list_id: int
    name: str
    workflow_id: str


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection as asyncpg itself: COPY and array parameters on the hot paths.

    Only calls the engine's methods, so it loads nothing of SQLAlchemy that the engine's
    holder has not loaded already."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection  # type: ignore[misc]


@asynccontextmanager
async def reading(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """The connection itself, or one lent by the engine's pool for the block."""
    if isinstance(db, asyncpg.Connection):
        yield db
        return
    async with driver_connection(db) as connection:
        yield connection


async def connect(dsn: str) -> asyncpg.Connection:
    """One plain connection with csm's session settings (asyncpg's DSN: `postgresql://...`)."""
    return await asyncpg.connect(dsn, server_settings=SERVER_SETTINGS)


FIND_SUB_CAMPAIGN = """
SELECT s.id, s.campaign_id, c.name AS campaign, s.list_id, s.name, s.workflow_id
FROM sub_campaigns s JOIN campaigns c ON c.id = s.campaign_id
WHERE s.workflow_id = $1 OR s.name = $1
ORDER BY s.id
"""


async def find_sub_campaign(db: Db, reference: str) -> SubCampaignRef:
    """A sub-campaign by workflow id, or by name when that name is unique."""
    async with reading(db) as connection:
        rows = await connection.fetch(FIND_SUB_CAMPAIGN, reference)
    if not rows:
        raise SubCampaignError(f"unknown sub-campaign {reference!r}")
    if len(rows) > 1:
        ids = ", ".join(r["workflow_id"] for r in rows)
        raise SubCampaignError(f"{reference!r} names several sub-campaigns: use one of {ids}")
    return SubCampaignRef(**dict(rows[0]))


async def campaign_timezone(db: Db, campaign_id: int) -> str:
    """The campaign's IANA time zone: how its managers read times."""
    async with reading(db) as connection:
        timezone = await connection.fetchval(
            "SELECT timezone FROM campaigns WHERE id = $1", campaign_id
        )
    if timezone is None:
        raise CsmError(f"campaign {campaign_id} does not exist (deleted while reading it?)")
    return timezone
