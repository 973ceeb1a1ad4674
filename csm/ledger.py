"""The attempt ledger: writing batches with their cursor, and counting what passes did.

Exactness rests on three things: the ledger's unique key, the frozen selection,
and `pass_progress`, whose cursor moves in the same transaction as the batch's
rows. A batch is marked in flight before its first attempt; if the worker dies
before the batch is recorded, its contacts are recorded as `unknown` on resume
and never resent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from csm.plan import PassCounts
from csm.vocabulary import UNKNOWN

ATTEMPT_COLUMNS = (
    "sub_campaign_id",
    "campaign_id",
    "day",
    "pass_number",
    "contact_id",
    "device_id",
    "try_number",
    "channel",
    "result",
    "skip_reason",
    "attempted_at",
)

AttemptRow = tuple[int, int, date, int, int, int, int, str, str, str | None, datetime]


class PassKey:
    """(sub-campaign, day, pass number): the identity of one pass run."""

    __slots__ = ("day", "pass_number", "sub_campaign_id")

    def __init__(self, sub_campaign_id: int, day: date, pass_number: int):
        self.sub_campaign_id = sub_campaign_id
        self.day = day
        self.pass_number = pass_number

    @property
    def args(self) -> tuple[int, date, int]:
        return self.sub_campaign_id, self.day, self.pass_number


async def progress(connection: asyncpg.Connection, key: PassKey) -> asyncpg.Record | None:
    return await connection.fetchrow(
        "SELECT selected, cursor, inflight_to, finished FROM pass_progress"
        " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
        *key.args,
    )


async def mark_inflight(connection: asyncpg.Connection, key: PassKey, up_to: int) -> None:
    await connection.execute(
        "UPDATE pass_progress SET inflight_to = $4, updated_at = now()"
        " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
        *key.args,
        up_to,
    )


async def record_batch(
    connection: asyncpg.Connection, key: PassKey, rows: Sequence[AttemptRow], cursor: int
) -> None:
    """The batch's attempt rows and the new cursor, in one transaction."""
    async with connection.transaction():
        if rows:
            await connection.copy_records_to_table(
                "attempts", records=rows, columns=ATTEMPT_COLUMNS
            )
        await connection.execute(
            "UPDATE pass_progress SET cursor = $4, inflight_to = NULL, updated_at = now()"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
            *key.args,
            cursor,
        )


async def settle_inflight(
    connection: asyncpg.Connection,
    key: PassKey,
    *,
    campaign_id: int,
    channel: str,
    now: datetime,
) -> int:
    """After a crash: contacts of the batch in flight with no row get one `unknown` row.

    Returns how many. The cursor then moves past the batch: nothing is resent.
    """
    async with connection.transaction():
        state = await connection.fetchrow(
            "SELECT cursor, inflight_to FROM pass_progress"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 FOR UPDATE",
            *key.args,
        )
        if state is None or state["inflight_to"] is None:
            return 0
        status = await connection.execute(
            """
            INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,
                                  device_id, try_number, channel, result, attempted_at)
            SELECT s.sub_campaign_id, $6, s.day, s.pass_number, s.contact_id, 0, 0, $7, $8, $9
            FROM pass_selections s
            WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3
              AND s.seq > $4 AND s.seq <= $5
              AND NOT EXISTS (
                SELECT 1 FROM attempts a
                WHERE a.sub_campaign_id = s.sub_campaign_id AND a.day = s.day
                  AND a.pass_number = s.pass_number AND a.contact_id = s.contact_id)
            ON CONFLICT DO NOTHING
            """,
            *key.args,
            state["cursor"],
            state["inflight_to"],
            campaign_id,
            channel,
            UNKNOWN,
            now,
        )
        await connection.execute(
            "UPDATE pass_progress SET cursor = inflight_to, inflight_to = NULL, updated_at = now()"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
            *key.args,
        )
        return int(status.split()[-1])


async def skip_remaining(
    connection: asyncpg.Connection,
    key: PassKey,
    *,
    campaign_id: int,
    channel: str,
    reason: str,
    now: datetime,
) -> int:
    """Every contact past the cursor gets a skip row with `reason` (stop, closed window)."""
    async with connection.transaction():
        state = await connection.fetchrow(
            "SELECT cursor, selected FROM pass_progress"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 FOR UPDATE",
            *key.args,
        )
        if state is None:
            return 0
        status = await connection.execute(
            """
            INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,
                                  device_id, try_number, channel, result, skip_reason,
                                  attempted_at)
            SELECT s.sub_campaign_id, $5, s.day, s.pass_number, s.contact_id, 0, 0, $6,
                   'skipped', $7, $8
            FROM pass_selections s
            WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3 AND s.seq > $4
            ON CONFLICT DO NOTHING
            """,
            *key.args,
            state["cursor"],
            campaign_id,
            channel,
            reason,
            now,
        )
        await connection.execute(
            "UPDATE pass_progress SET cursor = selected, inflight_to = NULL, updated_at = now()"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
            *key.args,
        )
        return int(status.split()[-1])


async def count_pass(connection: asyncpg.Connection, key: PassKey) -> PassCounts:
    """What a pass did, from the ledger itself (exact after any number of retries)."""
    rows = await connection.fetch(
        """
        SELECT result, skip_reason, count(*) AS n, count(DISTINCT contact_id) AS contacts
        FROM attempts WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3
        GROUP BY result, skip_reason
        """,
        *key.args,
    )
    totals = await connection.fetchrow(
        """
        SELECT
          count(DISTINCT contact_id) FILTER (WHERE result NOT IN ('skipped', 'not_attempted'))
            AS attempted,
          count(DISTINCT contact_id) FILTER (WHERE result = 'skipped') AS skipped,
          (SELECT selected FROM pass_progress p WHERE p.sub_campaign_id = $1 AND p.day = $2
             AND p.pass_number = $3) AS selected
        FROM attempts WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3
        """,
        *key.args,
    )
    counts = PassCounts(
        selected=totals["selected"] or 0,
        attempted=totals["attempted"],
        skipped=totals["skipped"],
    )
    for row in rows:
        if row["result"] == "skipped":
            counts.skip_reasons[row["skip_reason"] or "unspecified"] = row["contacts"]
        else:
            counts.results[row["result"]] = row["n"]
    counts.unknown = counts.results.get(UNKNOWN, 0)
    return counts
