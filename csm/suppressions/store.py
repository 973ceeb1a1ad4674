"""The suppressions table: add, lift and list suppressions, in a campaign or in every one.

A suppression's scope is one campaign or, with no campaign (`campaign_id` NULL),
every campaign; the unique index on (value, kind, coalesce(campaign_id, 0)) holds
each target once per scope, so adding one twice is no error: the first row stays,
reason and all. Requests name their target with `account=`, `phone=` or `email=`
(see `Named`); everything below them takes a normalised `Target`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.strategy.values import did_you_mean, with_hint
from csm.suppressions.errors import SuppressionError
from csm.suppressions.targets import (
    DEFAULT_REASON,
    Named,
    SuppressionKind,
    Target,
    checked_reason,
    kind_named,
)

if TYPE_CHECKING:
    from csm.pooled import Connection

#: Ids are `bigint`: a number outside names no suppression (and asyncpg would refuse it).
_MAX_ID = 2**63 - 1
#: Rows sent to the database in one statement by `insert_many`.
_INSERT_BATCH = 10_000


@dataclass(frozen=True)
class SuppressionRow:
    """One stored suppression; `campaign` is the scope's campaign name, None for every campaign."""

    id: int
    campaign: str | None
    kind: str
    value: str
    reason: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class SuppressionPage:
    """The newest suppressions matching a listing's filters, and how many match in all."""

    rows: list[SuppressionRow]
    total: int


@dataclass(frozen=True)
class Added:
    """The suppression of a target: its id, and whether this call created it."""

    id: int
    created: bool
    kind: str
    value: str


_ROW = """
SELECT s.id, c.name AS campaign, s.kind, s.value, s.reason, s.created_at
FROM {source} s LEFT JOIN campaigns c ON c.id = s.campaign_id
"""

_INSERT_ONE = """
WITH inserted AS (
    INSERT INTO suppressions (campaign_id, kind, value, reason)
    VALUES ($1::int, $2::text, $3::text, $4::text)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id, true AS created FROM inserted
UNION ALL
SELECT id, false FROM suppressions
WHERE value = $3 AND kind = $2 AND coalesce(campaign_id, 0) = coalesce($1::int, 0)
LIMIT 1
"""


async def campaign_id_of(connection: Connection, campaign: str | None) -> int | None:
    """The scope's campaign id (None: every campaign), or SuppressionError with a hint."""
    if campaign is None:
        return None
    campaign_id = await connection.fetchval("SELECT id FROM campaigns WHERE name = $1", campaign)
    if campaign_id is None:
        names = [row["name"] for row in await connection.fetch("SELECT name FROM campaigns")]
        raise SuppressionError(
            with_hint(f"unknown campaign {campaign!r}", did_you_mean(campaign, names))
        )
    return campaign_id


async def insert_one(
    connection: Connection, campaign_id: int | None, target: Target, reason: str
) -> tuple[int, bool]:
    """(id, created) of the target's suppression in the scope, inserting it if missing."""
    for _ in range(3):
        # Empty only when a concurrent transaction inserted the same target after this
        # statement's snapshot was taken: the next statement sees it.
        row = await connection.fetchrow(
            _INSERT_ONE, campaign_id, target.kind.value, target.value, reason
        )
        if row is not None:
            return row["id"], row["created"]
    raise SuppressionError(
        f"could not add the suppression of {target.kind} {target.value!r}: try again"
    )


async def suppress_devices(connection: Connection, device_ids: Iterable[int], reason: str) -> None:
    """Suppress these devices' numbers and addresses in every campaign (a STOP reply, a
    hard bounce), inside the caller's transaction: the batch that met them records it."""
    await connection.execute(
        """
        INSERT INTO suppressions (kind, value, reason)
        SELECT CASE WHEN kind = 'email' THEN 'email' ELSE 'phone' END, value, $2
        FROM devices WHERE id = ANY($1::bigint[])
        ON CONFLICT DO NOTHING
        """,
        list(device_ids),
        reason,
    )


async def insert_many(
    connection: Connection,
    campaign_id: int | None,
    kind: SuppressionKind,
    pairs: list[tuple[str, str]],
) -> int:
    """Suppress each (value, reason) of one kind in the scope; how many were new."""
    added = 0
    for start in range(0, len(pairs), _INSERT_BATCH):
        batch = pairs[start : start + _INSERT_BATCH]
        status = await connection.execute(
            "INSERT INTO suppressions (campaign_id, kind, value, reason)"
            " SELECT $1::int, $2::text, t.value, t.reason"
            " FROM unnest($3::text[], $4::text[]) AS t(value, reason)"
            " ON CONFLICT DO NOTHING",
            campaign_id,
            kind.value,
            [value for value, _ in batch],
            [reason for _, reason in batch],
        )
        added += int(status.split()[-1])
    return added


def _row(record: asyncpg.Record) -> SuppressionRow:
    return SuppressionRow(
        id=record["id"],
        campaign=record["campaign"],
        kind=record["kind"],
        value=record["value"],
        reason=record["reason"],
        created_at=record["created_at"],
    )


async def ensure_suppression(
    engine: AsyncEngine,
    *,
    campaign: str | None = None,
    reason: str = DEFAULT_REASON,
    default_region: str = "US",
    **named: Unpack[Named],
) -> Added:
    """Suppress exactly one target in `campaign` (None: every campaign); idempotent.

    `account` is an account key (the account need not exist yet), `phone` any
    spelling the list importer accepts (numbers without +country are read in
    `default_region`), `email` an address. When the target is already suppressed
    in that scope, the stored row is left as it is (its reason too) and `created`
    is False.
    """
    target = Target.one_of(named, default_region)
    stored_reason = checked_reason(reason)
    async with driver_connection(engine) as connection, connection.transaction():
        campaign_id = await campaign_id_of(connection, campaign)
        number, created = await insert_one(connection, campaign_id, target, stored_reason)
    return Added(id=number, created=created, kind=target.kind.value, value=target.value)


class AddRequest(Named, total=False):
    """The keyword arguments of `ensure_suppression`, which `add_suppression` passes on."""

    campaign: str | None
    reason: str
    default_region: str


async def add_suppression(engine: AsyncEngine, **request: Unpack[AddRequest]) -> int:
    """Suppress exactly one target (see `ensure_suppression`); its id, the existing one if any."""
    return (await ensure_suppression(engine, **request)).id


async def remove_suppression(engine: AsyncEngine, suppression_id: int) -> SuppressionRow:
    """Lift one suppression by id; returns what it was. No such id → SuppressionError."""
    if not 1 <= suppression_id <= _MAX_ID:
        raise SuppressionError(f"no suppression with id {suppression_id}")
    async with driver_connection(engine) as connection:
        record = await connection.fetchrow(
            "WITH gone AS (DELETE FROM suppressions WHERE id = $1::bigint RETURNING *)"
            + _ROW.format(source="gone"),
            suppression_id,
        )
    if record is None:
        raise SuppressionError(f"no suppression with id {suppression_id}")
    return _row(record)


async def remove_target(
    engine: AsyncEngine,
    *,
    campaign: str | None = None,
    every_scope: bool = False,
    default_region: str = "US",
    **named: Unpack[Named],
) -> int:
    """Lift the suppression of one target in `campaign` (None: the every-campaign one).

    With `every_scope`, lift it in every campaign and globally alike. Returns
    how many suppressions were removed (0 when the target was not suppressed).
    """
    target = Target.one_of(named, default_region)
    if every_scope and campaign is not None:
        raise SuppressionError("name a campaign or every scope, not both")
    async with driver_connection(engine) as connection:
        campaign_id = await campaign_id_of(connection, campaign)
        status = await connection.execute(
            "DELETE FROM suppressions WHERE value = $1 AND kind = $2"
            " AND ($4 OR coalesce(campaign_id, 0) = coalesce($3::int, 0))",
            target.value,
            target.kind.value,
            campaign_id,
            every_scope,
        )
    return int(status.split()[-1])


async def list_suppressions(
    engine: AsyncEngine,
    *,
    campaign: str | None = None,
    only_global: bool = False,
    kind: str | None = None,
    reason: str | None = None,
    value: str | None = None,
    limit: int | None = 100,
) -> SuppressionPage:
    """The newest suppressions matching every filter given, and how many match in all.

    `campaign` keeps the suppressions scoped to that campaign only (the global
    ones apply to it as well: `only_global` lists those); `value` is a stored
    target (see `normalise_target`). `limit` None lists them all.
    """
    if campaign is not None and only_global:
        raise SuppressionError("list one campaign's suppressions or the global ones, not both")
    if limit is not None and limit < 1:
        raise SuppressionError(f"the limit must be at least 1, not {limit}")
    if limit is not None:
        limit = min(limit, _MAX_ID)  # LIMIT is a bigint; no table holds more rows anyway
    chosen_kind = kind_named(kind).value if kind is not None else None
    async with driver_connection(engine) as connection:
        campaign_id = await campaign_id_of(connection, campaign)
        where = (
            " WHERE ($1::int IS NULL OR s.campaign_id = $1) AND (NOT $2 OR s.campaign_id IS NULL)"
            " AND ($3::text IS NULL OR s.kind = $3) AND ($4::text IS NULL OR s.reason = $4)"
            " AND ($5::text IS NULL OR s.value = $5)"
        )
        filters = (campaign_id, only_global, chosen_kind, reason, value)
        total = await connection.fetchval("SELECT count(*) FROM suppressions s" + where, *filters)
        records = await connection.fetch(
            _ROW.format(source="suppressions")
            + where
            + " ORDER BY s.created_at DESC, s.id DESC LIMIT $6",
            *filters,
            limit,
        )
    return SuppressionPage(rows=[_row(record) for record in records], total=total)
