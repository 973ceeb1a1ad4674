"""The adapter's SQL on `provider_attempts`: claim a key, record the placement, settle.

A row is written *before* its POST (state `placing`) and its attempt key is the primary
key: a second claim of the same key inserts nothing, which is how a key is never
placed twice whatever crashed. The webhook receiver moves `status` up its rank; only
the worker writes `state`, `result` and `connect_to`. Each function is one short
statement on a connection the caller borrows from the pool for that statement only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from csm.providers.twilio.protocol import FINAL_RANK

CLAIM_SQL = """
WITH claimed AS (
  INSERT INTO provider_attempts (attempt_key, sub_campaign_id, channel, provider, bridge, message)
  VALUES ($1, $2, $3, 'twilio', $4, $5)
  ON CONFLICT (attempt_key) DO NOTHING
  RETURNING 1)
SELECT EXISTS (SELECT 1 FROM claimed)
"""

READ_SQL = """
SELECT attempt_key, sid, state, status, status_rank, answered_by, error_code, result,
       connect_to, placed_at,
       extract(epoch FROM placed_at - now())::float8 AS age
FROM provider_attempts WHERE attempt_key = $1
"""


@dataclass(frozen=True, slots=True)
class Row:
    """What the board read of one attempt (ids and codes only)."""

    attempt_key: str
    sid: str | None
    state: str
    status: str | None
    status_rank: int
    answered_by: str | None
    error_code: str | None
    result: str | None
    connect_to: str | None

    @property
    def final(self) -> bool:
        return self.status_rank >= FINAL_RANK


@dataclass(frozen=True, slots=True)
class Stored(Row):
    """An attempt's whole row as the worker reads it: what the board reads, and when it
    was placed."""

    placed_at: datetime
    age: float  # seconds since placed_at, on the database's clock (negative)


def sub_campaign_of(attempt_key: str) -> int:
    """The sub-campaign id an attempt key starts with ("{sub_campaign}-{day}-...")."""
    head = attempt_key.split("-", 1)[0]
    if not head.isdigit():
        raise ValueError(f"attempt key {attempt_key!r} does not start with a sub-campaign id")
    return int(head)


async def claim(
    connection: asyncpg.Connection,
    key: str,
    *,
    channel: str,
    bridge: bool,
    message: str | None,
) -> bool:
    """Write the row of a key about to be placed; False when it was claimed before."""
    return bool(
        await connection.fetchval(CLAIM_SQL, key, sub_campaign_of(key), channel, bridge, message)
    )


async def read(connection: asyncpg.Connection, key: str) -> Stored | None:
    record = await connection.fetchrow(READ_SQL, key)
    if record is None:
        return None
    values = dict(record)
    values["age"] = -values["age"]
    return Stored(**values)


async def placed(
    connection: asyncpg.Connection, key: str, sid: str | None, status: str | None, rank: int
) -> None:
    """The carrier took the POST (sid None: it may have, the answer was lost)."""
    await connection.execute(
        """
        UPDATE provider_attempts
        SET state = 'placed', sid = coalesce(sid, $2), placed_at = now(), updated_at = now(),
            status = CASE WHEN status_rank < $4 THEN $3 ELSE status END,
            status_rank = greatest(status_rank, $4)
        WHERE attempt_key = $1 AND state <> 'settled'
        """,
        key,
        sid,
        status,
        rank,
    )


async def forget(connection: asyncpg.Connection, key: str) -> None:
    """Nothing was sent: the key may be claimed again (the pass's outage loop retries)."""
    await connection.execute(
        "DELETE FROM provider_attempts WHERE attempt_key = $1 AND state = 'placing'", key
    )


async def settle(
    connection: asyncpg.Connection,
    key: str,
    result: str,
    *,
    sid: str | None = None,
    status: str | None = None,
    rank: int = 0,
    answered_by: str | None = None,
    error_code: str | None = None,
) -> str:
    """Record the attempt's result (once: a settled row keeps its first result, which is
    returned). What a lookup learned (sid, a status of higher rank) is kept too. The voice
    message is dropped: nothing will speak it any more.

    Two waiters of one key may settle it at once: the second's UPDATE waits for the
    first's row lock and then matches nothing, while its statement's snapshot still
    shows the row unsettled, so the kept result is read again in a statement of its own.
    """
    kept = await connection.fetchval(
        """
        WITH done AS (
          UPDATE provider_attempts
          SET state = 'settled', result = $2, settled_at = now(), updated_at = now(),
              message = NULL, sid = coalesce(sid, $3),
              status = CASE WHEN status_rank < $5 THEN $4 ELSE status END,
              answered_by = coalesce(answered_by, $6), error_code = coalesce(error_code, $7),
              status_rank = greatest(status_rank, $5)
          WHERE attempt_key = $1 AND state <> 'settled'
          RETURNING result)
        SELECT coalesce((SELECT result FROM done),
                        (SELECT result FROM provider_attempts WHERE attempt_key = $1))
        """,
        key,
        result,
        sid,
        status,
        rank,
        answered_by,
        error_code,
    )
    if kept is None:
        kept = await connection.fetchval(
            "SELECT result FROM provider_attempts WHERE attempt_key = $1", key
        )
    return kept


async def connect(connection: asyncpg.Connection, key: str, address: str, result: str) -> None:
    """csm's decision on a bridged live answer: the agent's address ('' none), which the
    receiver's answer URL turns into <Dial> (or the message and <Hangup/>). The attempt
    is settled with the pass's result, so a re-worked batch never decides it again. The
    message stays only when the answer URL may still speak it."""
    await connection.execute(
        """
        UPDATE provider_attempts
        SET connect_to = $2, state = 'settled', result = $3, settled_at = now(),
            updated_at = now(), message = CASE WHEN $2 = '' THEN message END
        WHERE attempt_key = $1 AND connect_to IS NULL
        """,
        key,
        address,
        result,
    )


async def known_sids(connection: asyncpg.Connection, sids: list[str]) -> set[str]:
    """Which of these carrier ids already belong to an attempt."""
    rows = await connection.fetch(
        "SELECT sid FROM provider_attempts WHERE sid = ANY($1::text[])", sids
    )
    return {row["sid"] for row in rows}
