"""The attempt ledger: writing batches with their cursor, and counting what passes did.

Exactness rests on three things: the ledger's unique key, the frozen selection,
and `pass_progress`, whose cursor moves in the same transaction as the batch's
rows. A batch is marked in flight before its first attempt; if the worker dies
before the batch is recorded, its contacts are recorded as `unknown` on resume
and never resent — unless the provider honours attempt keys (answers a key it
has seen from its record instead of placing the attempt again): then the batch
is simply worked again and the ledger ends as if nothing had happened.

Every statement that writes ledger rows also adds them to the pass's totals
(`pass_totals`, `pass_reach`) in its own transaction, so live counts read a few
small rows and stay exact. A batch's totals are counted in Python from the rows
it has in memory: the statement trigger that did it before (migration 0008,
dropped by 0011) cost a third of a pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

import asyncpg

from csm.errors import CsmError
from csm.ledger_rows import ATTEMPT_COLUMNS, AttemptRow
from csm.plan import PassCounts
from csm.vocabulary import UNKNOWN

if TYPE_CHECKING:
    from csm.pooled import Connection

#: The pass_progress / pass_selections rows of one round.
ROUND = "WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 AND round = $4"
#: The pass_shards row of one shard (shards split round 0 only).
SHARD = "WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 AND shard = $4"


def try_shown(try_number: int) -> int:
    """A try as people count it (1, 2, ...): the ledger's `try_number` is the pass's round,
    from 0, and stays so (it is part of the unique key and of every attempt key)."""
    return try_number + 1


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

    #: Where the cursor and the batch in flight of what this key sweeps are kept: the
    #: table, its row (`where`, four parameters, so a statement's own start at $5) and
    #: the row's arguments. A round's are in pass_progress; a shard's in pass_shards.
    table = "pass_progress"
    where = ROUND

    @property
    def where_args(self) -> tuple[int, date, int, int]:
        return self.round_args


class ShardKey(PassKey):
    """One shard of a pass's round 0 (`pacing.shards`): the seqs (lo, selected] of its
    selection, swept with the shard's own cursor and batch in flight."""

    __slots__ = ("shard",)
    table = "pass_shards"
    where = SHARD

    def __init__(self, sub_campaign_id: int, day: date, pass_number: int, shard: int):
        super().__init__(sub_campaign_id, day, pass_number, 0)
        self.shard = shard

    @property
    def where_args(self) -> tuple[int, date, int, int]:
        return self.sub_campaign_id, self.day, self.pass_number, self.shard

    def next_round(self) -> PassKey:
        raise TypeError("retry rounds are not sharded: take the pass's own key")


async def progress(connection: Connection, key: PassKey) -> asyncpg.Record | None:
    return await connection.fetchrow(
        f"SELECT selected, cursor, inflight_to, finished, started_at FROM {key.table} {key.where}",
        *key.where_args,
    )


async def mark_inflight(connection: Connection, key: PassKey, up_to: int) -> None:
    await connection.execute(
        f"UPDATE {key.table} SET inflight_to = $5, updated_at = now() {key.where}",
        *key.where_args,
        up_to,
    )


class StaleBatch(CsmError):
    """A batch recorded after its range was closed (settled `unknown` or skipped).

    Only an attempt that Temporal already gave up on (a heartbeat timeout under load, a
    worker cut off from the server) gets here: its successor settled the batch when it
    resumed. Recording it as well would hold its contacts twice (an `unknown` row has
    device 0, so the ledger's unique key does not catch it) or move the cursor back, so
    the whole transaction is undone.
    """


async def record_batch(
    connection: Connection,
    key: PassKey,
    rows: Sequence[AttemptRow],
    cursor: int,
    *,
    start: int,
    keep_later_inflight: bool = False,
) -> None:
    """The batch's attempt rows, their totals and the new cursor, in one transaction.

    `start`: the cursor the batch started from. Batches are recorded in order, so the
    stored cursor is never past it, unless the batch's range was closed meanwhile
    (`StaleBatch`, nothing written). `keep_later_inflight`: the next batch may already be
    marked in flight (the sweep records a batch while it works the next); a mark past
    `cursor` then stays.
    """
    async with connection.transaction():
        if rows:
            # As plain tuples: asyncpg encodes a tuple subclass (AttemptRow) a third slower.
            records = map(tuple, rows)
            await connection.copy_records_to_table(
                "attempts", records=records, columns=ATTEMPT_COLUMNS
            )
            await add_to_totals(connection, key, rows)
        # The cursor's row last: a mark of the next batch waits on its lock only for the
        # commit.
        status = await connection.execute(
            f"UPDATE {key.table} SET cursor = $5, updated_at = now(),"
            " inflight_to = CASE WHEN $6 AND inflight_to > $5 THEN inflight_to END"
            f" {key.where} AND cursor <= $7",
            *key.where_args,
            cursor,
            keep_later_inflight,
            start,
        )
        if status == "UPDATE 0":
            raise StaleBatch(
                f"pass {key.pass_number} try {key.round + 1}: the batch after {start} came"
                " after its range was closed (settled or skipped); it is not recorded"
            )


#: Results after which a contact does not count as attempted in `pass_reach`.
NOT_TRIED = frozenset({"skipped", "not_attempted"})

#: One batch's totals added to its pass's: rows by (result, skip reason), and for round 0
#: the contacts it attempted or skipped. Every writer locks pass_reach's row first (an
#: unreferenced CTE runs after the main statement), then pass_totals' rows in sorted
#: order: shards recording at once wait for each other, never deadlock.
_ADD_TOTALS = """
WITH totals AS (
  INSERT INTO pass_totals AS t (sub_campaign_id, day, pass_number, result, skip_reason, rows,
                                contacts)
  SELECT $1, $2, $3, x.result, x.skip_reason, x.n, x.n
  FROM unnest($4::text[], $5::text[], $6::bigint[]) AS x(result, skip_reason, n)
  ORDER BY x.result, x.skip_reason
  ON CONFLICT (sub_campaign_id, day, pass_number, result, skip_reason) DO UPDATE
    SET rows = t.rows + EXCLUDED.rows, contacts = t.contacts + EXCLUDED.contacts)
INSERT INTO pass_reach AS r (sub_campaign_id, day, pass_number, attempted, skipped)
SELECT $1, $2, $3, $7::bigint, $8::bigint WHERE $7::bigint + $8::bigint > 0
ON CONFLICT (sub_campaign_id, day, pass_number) DO UPDATE
  SET attempted = r.attempted + EXCLUDED.attempted, skipped = r.skipped + EXCLUDED.skipped
"""


async def add_to_totals(connection: Connection, key: PassKey, rows: Sequence[AttemptRow]) -> None:
    """Add a batch's ledger rows to its pass's totals; call it in the rows' transaction.

    `contacts` equals `rows`: the ledger's unique key allows one skip row per contact and
    round, and count_pass reads `contacts` for skips only. A contact's round-0 rows are
    all in one batch, and only round 0 brings new contacts (retry rounds retry contacts
    already counted), so reach counts each contact once.
    """
    if not rows:
        return
    by_result = Counter((row.result, row.skip_reason or "") for row in rows)
    attempted = skipped = 0
    if key.round == 0:
        tried = {row.contact_id for row in rows if row.result not in NOT_TRIED}
        attempted = len(tried)
        skipped = len({row.contact_id for row in rows}) - attempted
    results, reasons = zip(*by_result, strict=True)
    await connection.execute(
        _ADD_TOTALS,
        *key.args,
        list(results),
        list(reasons),
        list(by_result.values()),
        attempted,
        skipped,
    )


async def _close_range(
    connection: Connection,
    key: PassKey,
    *,
    upper: str,
    values: tuple,
) -> int:
    """Rows for the round's contacts past the cursor (up to `upper`) that have none yet."""
    state = await connection.fetchrow(
        f"SELECT cursor, inflight_to, selected FROM {key.table} {key.where} FOR UPDATE",
        *key.where_args,
    )
    if state is None or state[upper] is None:
        return 0
    campaign_id, channel, result, reason, now = values
    # The rows and their totals in one statement; unreferenced CTEs run after the main
    # query, in order: pass_reach, then pass_totals, as in add_to_totals.
    written = await connection.fetchval(
        """
        WITH written AS (
          INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, contact_id,
                                device_id, try_number, channel, result, skip_reason,
                                attempted_at)
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
          RETURNING 1),
        reach AS (
          INSERT INTO pass_reach AS r (sub_campaign_id, day, pass_number, attempted, skipped)
          SELECT $1, $2, $3, count(*) FILTER (WHERE $12), count(*) FILTER (WHERE NOT $12)
          FROM written WHERE $4 = 0 HAVING count(*) > 0
          ON CONFLICT (sub_campaign_id, day, pass_number) DO UPDATE
            SET attempted = r.attempted + EXCLUDED.attempted,
                skipped = r.skipped + EXCLUDED.skipped),
        totals AS (
          INSERT INTO pass_totals AS t (sub_campaign_id, day, pass_number, result, skip_reason,
                                        rows, contacts)
          SELECT $1, $2, $3, $9, coalesce($10, ''), count(*), count(*)
          FROM written HAVING count(*) > 0
          ON CONFLICT (sub_campaign_id, day, pass_number, result, skip_reason) DO UPDATE
            SET rows = t.rows + EXCLUDED.rows, contacts = t.contacts + EXCLUDED.contacts)
        SELECT count(*) FROM written
        """,
        *key.round_args,
        state["cursor"],
        state[upper],
        campaign_id,
        channel,
        result,
        reason,
        now,
        result not in NOT_TRIED,
    )
    await connection.execute(
        f"UPDATE {key.table} SET cursor = {upper}, inflight_to = NULL, updated_at = now()"
        f" {key.where}",
        *key.where_args,
    )
    return int(written)


async def settle_inflight(
    connection: Connection,
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


async def rewind_inflight(connection: Connection, key: PassKey) -> bool:
    """After a crash, with an idempotent provider: forget the in-flight mark so the batch is
    worked again from the cursor. True when there was one."""
    status = await connection.execute(
        f"UPDATE {key.table} SET inflight_to = NULL, updated_at = now() {key.where}"
        " AND inflight_to IS NOT NULL",
        *key.where_args,
    )
    return status != "UPDATE 0"


async def split_round(
    connection: Connection, key: PassKey, shards: int, now: datetime
) -> list[ShardKey]:
    """Round 0's frozen selection in `shards` contiguous parts, stored once; every shard.

    Seqs are dense (1..selected), so shard k is (selected·k/n, selected·(k+1)/n]. The
    first activity of the pass to get here writes the split; the others (and retries)
    find it, and a pass split once keeps that split whatever a later input says.
    """
    await connection.execute(
        """
        INSERT INTO pass_shards (sub_campaign_id, day, pass_number, shard, lo, selected, cursor,
                                 started_at, finished, updated_at)
        SELECT p.sub_campaign_id, p.day, p.pass_number, k,
               p.selected::bigint * k / $4, p.selected::bigint * (k + 1) / $4,
               p.selected::bigint * k / $4, $5, false, now()
        FROM pass_progress p, generate_series(0, $4 - 1) AS k
        WHERE p.sub_campaign_id = $1 AND p.day = $2 AND p.pass_number = $3 AND p.round = 0
          AND NOT EXISTS (SELECT 1 FROM pass_shards h WHERE h.sub_campaign_id = $1
                          AND h.day = $2 AND h.pass_number = $3)
        ON CONFLICT DO NOTHING
        """,
        *key.args,
        shards,
        now,
    )
    return await shards_of(connection, key)


async def shards_of(connection: Connection, key: PassKey) -> list[ShardKey]:
    """The shards round 0 of the pass was split into, if it was (else none)."""
    if key.round != 0:
        return []
    numbers = await connection.fetch(
        "SELECT shard FROM pass_shards WHERE sub_campaign_id = $1 AND day = $2"
        " AND pass_number = $3 ORDER BY shard",
        *key.args,
    )
    return [ShardKey(*key.args, row["shard"]) for row in numbers]


async def join_shards(connection: Connection, key: PassKey) -> bool:
    """Once every shard of round 0 is through, round 0's own cursor moves to its end (what
    the retry rounds, the counts and the reservations of list priority read). True if so."""
    async with connection.transaction():
        status = await connection.execute(
            """
            UPDATE pass_progress SET cursor = selected, inflight_to = NULL, updated_at = now()
            WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 AND round = 0
              AND NOT EXISTS (SELECT 1 FROM pass_shards h WHERE h.sub_campaign_id = $1
                              AND h.day = $2 AND h.pass_number = $3 AND h.cursor < h.selected)
            """,
            *key.args,
        )
        if status == "UPDATE 0":
            return False
        await connection.execute(
            "UPDATE pass_shards SET finished = true, updated_at = now()"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3 AND NOT finished",
            *key.args,
        )
        return True


async def skip_remaining(
    connection: Connection,
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


async def count_pass(connection: Connection, key: PassKey) -> PassCounts:
    """What a pass did, from the totals every ledger write adds to (`add_to_totals`).

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
