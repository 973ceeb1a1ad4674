"""The receiver's SQL: each callback is one statement (one short transaction).

An attempt's status only moves up its rank (`status_rank < new rank` in the
UPDATE's WHERE; PostgreSQL re-checks it on the locked row, so two callbacks
racing for one attempt cannot move it down). Every callback that names an
attempt leaves a `provider_events` row saying whether it moved it (`changed`);
one that names none leaves a `provider_orphans` row for reconciliation.
Nothing here stores a phone number or a message's words.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.providers.twilio.protocol import CALL_RANKS, FINAL_RANK


@dataclass(frozen=True)
class Callback:
    """What a status or answer callback says about one attempt (ids and codes only)."""

    kind: str  # voice_status | voice_answer | sms_status
    key: str | None
    sid: str
    status: str | None
    rank: int
    answered_by: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Applied:
    """The callback's effect: whether its attempt exists and whether it moved forward."""

    found: bool
    changed: bool


@dataclass(frozen=True)
class Answered:
    """The attempt a call's answer URL belongs to (None fields: no such attempt)."""

    found: bool
    bridge: bool
    message: str | None
    connect_to: str | None


_ORPHAN = """
INSERT INTO provider_orphans (kind, attempt_key, sid, status) VALUES ($1, $2, $3, $4)
"""

# A final status carries the last word on AnsweredBy and ErrorCode (a new value wins);
# the SID stored at placing stays.
_STATUS = f"""
WITH found AS (
    SELECT attempt_key FROM provider_attempts WHERE attempt_key = $1
), moved AS (
    UPDATE provider_attempts
    SET status = $2, status_rank = $3,
        answered_by = coalesce($4, answered_by),
        error_code = coalesce($5, error_code),
        sid = coalesce(sid, $6),
        -- the call is over: nothing will speak its message (a bridged answer no agent took
        -- kept it for the answer URL); it is personal data, not kept longer than needed
        message = CASE WHEN $3 >= {FINAL_RANK} THEN NULL ELSE message END,
        updated_at = now()
    WHERE attempt_key = $1 AND status_rank < $3
    RETURNING 1
), event AS (
    INSERT INTO provider_events (attempt_key, sid, kind, status, answered_by, error_code, changed)
    SELECT $1, $6, $7, $2, $4, $5, EXISTS (SELECT 1 FROM moved) FROM found
), orphan AS (
    INSERT INTO provider_orphans (kind, attempt_key, sid, status)
    SELECT $7, $1, $6, $2 WHERE NOT EXISTS (SELECT 1 FROM found)
)
SELECT EXISTS (SELECT 1 FROM found) AS found, EXISTS (SELECT 1 FROM moved) AS changed
"""

# The answer URL: the call is in progress (if no later status came first) and AMD's
# AnsweredBy is recorded unless a final status already gave one.
_ANSWER = """
WITH found AS (
    SELECT attempt_key, bridge, message, connect_to
    FROM provider_attempts WHERE attempt_key = $1
), moved AS (
    UPDATE provider_attempts
    SET status = CASE WHEN status_rank < $2 THEN $3 ELSE status END,
        status_rank = greatest(status_rank, $2),
        answered_by = coalesce(answered_by, $4),
        sid = coalesce(sid, $5),
        updated_at = now()
    WHERE attempt_key = $1
      AND (status_rank < $2 OR (answered_by IS NULL AND $4::text IS NOT NULL)
           OR (sid IS NULL AND $5::text IS NOT NULL))
    RETURNING 1
), event AS (
    INSERT INTO provider_events (attempt_key, sid, kind, status, answered_by, changed)
    SELECT $1, $5, $6, $3, $4, EXISTS (SELECT 1 FROM moved) FROM found
), orphan AS (
    INSERT INTO provider_orphans (kind, attempt_key, sid, status)
    SELECT $6, $1, $5, $3 WHERE NOT EXISTS (SELECT 1 FROM found)
)
SELECT EXISTS (SELECT 1 FROM moved) AS changed, f.bridge, f.message, f.connect_to
FROM (SELECT 1) AS one LEFT JOIN found f ON true
"""

IN_PROGRESS = "in-progress"


async def apply_status(engine: AsyncEngine, callback: Callback) -> Applied:
    """Move the attempt forward if the status outranks its own; record the event or orphan."""
    async with driver_connection(engine) as connection:
        if callback.key is None:
            await _orphan(connection, callback)
            return Applied(found=False, changed=False)
        row = await connection.fetchrow(
            _STATUS,
            callback.key,
            callback.status,
            callback.rank,
            callback.answered_by,
            callback.error_code,
            callback.sid,
            callback.kind,
        )
    assert row is not None  # the final SELECT always yields one row
    return Applied(found=row["found"], changed=row["changed"])


async def apply_answer(engine: AsyncEngine, callback: Callback) -> Answered:
    """Record that the call was answered (and by what); the attempt's bridge and message."""
    async with driver_connection(engine) as connection:
        if callback.key is None:
            await _orphan(connection, callback)
            return Answered(found=False, bridge=False, message=None, connect_to=None)
        row = await connection.fetchrow(
            _ANSWER,
            callback.key,
            CALL_RANKS[IN_PROGRESS],
            IN_PROGRESS,
            callback.answered_by,
            callback.sid,
            callback.kind,
        )
    assert row is not None
    return Answered(
        found=row["bridge"] is not None,
        bridge=bool(row["bridge"]),
        message=row["message"],
        connect_to=row["connect_to"],
    )


async def connect_to(engine: AsyncEngine, key: str) -> str | None:
    """The agent address the worker chose for a bridged live answer (None: not yet)."""
    async with driver_connection(engine) as connection:
        return await connection.fetchval(
            "SELECT connect_to FROM provider_attempts WHERE attempt_key = $1", key
        )


async def _orphan(connection: asyncpg.Connection, callback: Callback) -> None:
    await connection.execute(_ORPHAN, callback.kind, callback.key, callback.sid, callback.status)


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """How many callbacks wait for reconciliation (orphans) and how many were kept (events)."""
    async with driver_connection(engine) as connection:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM provider_orphans WHERE reconciled_at IS NULL) AS orphans,"
            " (SELECT count(*) FROM provider_events) AS events"
        )
    assert row is not None
    return {"orphans": row["orphans"], "events": row["events"]}


async def orphan_count(engine: AsyncEngine) -> int:
    """Callbacks that matched no attempt and are not reconciled yet."""
    return (await counts(engine))["orphans"]
