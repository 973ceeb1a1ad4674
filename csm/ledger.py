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

#: The pass_progress / pass_selections rows of one round.
ROUND = "WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 AND round = $4"

AttemptRow = tuple[int, int, date, int, int, int, int, str, str, str | None, datetime]


class PassKey:
    """(sub-campaign, day, pass number) of one pass run, and the round (= try) being worked."""

    __slots__ = ("day", "pass_number", "round", "sub_campaign_id")

    def __init__(self, sub_campaign_id: int, day: date, pass_number: int, round: int = 0):
        self.sub_campaign_id = sub_campaign_id
        self.day = day
        self.pass_number = pass_number
        self.round = round

    @property
    def args(self) -> tuple[int, date, int]:
        """The pass's identity in the ledger."""
        return self.sub_campaign_id, self.day, self.pass_number

    @property
    def round_args(self) -> tuple[int, date, int, int]:
        """The round's identity in pass_selections and pass_progress."""
        return self.sub_campaign_id, self.day, self.pass_number, self.round

    def next_round(self) -> PassKey:
        return PassKey(self.sub_campaign_id, self.day, self.pass_number, self.round + 1)


async def progress(connection: asyncpg.Connection, key: PassKey) -> asyncpg.Record | None:
    return await connection.fetchrow(
        f"SELECT selected, cursor, inflight_to, finished, started_at FROM pass_progress {ROUND}",
        *key.round_args,
    )


async def mark_inflight(connection: asyncpg.Connection, key: PassKey, up_to: int) -> None:
    await connection.execute(
        f"UPDATE pass_progress SET inflight_to = $5, updated_at = now() {ROUND}",
        *key.round_args,
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
            f"UPDATE pass_progress SET cursor = $5, inflight_to = NULL, updated_at = now() {ROUND}",
            *key.round_args,
            cursor,
        )


async def _close_range(
    connection: asyncpg.Connection,
    key: PassKey,
    *,
    upper: str,
    values: tuple,
) -> int:
    """Rows for the round's contacts past the cursor (up to `upper`) that have none yet."""
    state = await connection.fetchrow(
        f"SELECT cursor, inflight_to, selected FROM pass_progress {ROUND} FOR UPDATE",
        *key.round_args,
    )
    if state is None or state[upper] is None:
        return 0
    campaign_id, channel, result, reason, now = values
    status = await connection.execute(
        """
        INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,
                              device_id, try_number, channel, result, skip_reason, attempted_at)
        SELECT s.sub_campaign_id, $7, s.day, s.pass_number, s.contact_id, 0, s.round, $8, $9,
               $10, $11
        FROM pass_selections s
        WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3 AND s.round = $4
          AND s.seq > $5 AND s.seq <= $6
          AND NOT EXISTS (
            SELECT 1 FROM attempts a
            WHERE a.sub_campaign_id = s.sub_campaign_id AND a.day = s.day
              AND a.pass_number = s.pass_number AND a.contact_id = s.contact_id
              AND a.try_number = s.round)
        ON CONFLICT DO NOTHING
        """,
        *key.round_args,
        state["cursor"],
        state[upper],
        campaign_id,
        channel,
        result,
        reason,
        now,
    )
    await connection.execute(
        f"UPDATE pass_progress SET cursor = {upper}, inflight_to = NULL, updated_at = now()"
        f" {ROUND}",
        *key.round_args,
    )
    return int(status.split()[-1])


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
        return await _close_range(
            connection, key, upper="inflight_to", values=(campaign_id, channel, UNKNOWN, None, now)
        )


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
        return await _close_range(
            connection, key, upper="selected", values=(campaign_id, channel, "skipped", reason, now)
        )


async def count_pass(connection: asyncpg.Connection, key: PassKey) -> PassCounts:
    """What a pass did, from the totals the ledger's trigger keeps (migration 0008).

    Exact after any number of retries, and cheap at any size: a few small rows per
    pass, updated in the same transaction as each batch. A skip reason counts the
    contacts skipped for it in each round.
    """
    rows = await connection.fetch(
        "SELECT result, skip_reason, rows, contacts FROM pass_totals"
        " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3",
        *key.args,
    )
    totals = await connection.fetchrow(
        """
        SELECT
          (SELECT attempted FROM pass_reach r WHERE r.sub_campaign_id = $1 AND r.day = $2
             AND r.pass_number = $3) AS attempted,
          (SELECT skipped FROM pass_reach r WHERE r.sub_campaign_id = $1 AND r.day = $2
             AND r.pass_number = $3) AS skipped,
          (SELECT selected FROM pass_progress p WHERE p.sub_campaign_id = $1 AND p.day = $2
             AND p.pass_number = $3 AND p.round = 0) AS selected
        """,
        *key.args,
    )
    counts = PassCounts(
        selected=totals["selected"] or 0,
        attempted=totals["attempted"] or 0,
        skipped=totals["skipped"] or 0,
    )
    for row in rows:
        if row["result"] == "skipped":
            reason = row["skip_reason"] or "unspecified"
            counts.skip_reasons[reason] = counts.skip_reasons.get(reason, 0) + row["contacts"]
        else:
            counts.results[row["result"]] = counts.results.get(row["result"], 0) + row["rows"]
    counts.unknown = counts.results.get(UNKNOWN, 0)
    return counts
