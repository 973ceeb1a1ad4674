"""Compliance for one batch of a pass: leases, priority, final outcomes and cap history.

Why leases: two passes (of any campaigns) must never attempt one account at the
same moment, and a cap must count every attempt made anywhere. A pass claims
its whole batch's accounts in one statement (`contact_leases`, one row per
account) and releases them in the transaction that records the batch. While
it holds an account's lease, every other attempt to that account is already
committed in the ledger, so the history read after claiming is complete and the
cap check cannot be raced. One statement per batch, not a row lock per attempt:
the pass stays fast.

A lease outlives a crashed worker by at most LEASE_TTL; the pass's retry holds
the same lease name, settles the batch in flight as `unknown` and releases it.

List priority: while a running pass of a higher-priority campaign still has an
account ahead of its cursor, a pass whose policy enforces caps leaves that
account to it (skip reason `reserved`), so the higher-priority campaign gets
the shared cap first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from csm.compliance.caps import CONVERSATION_PAUSE, CapRules, PastAttempt, blocking_rule
from csm.compliance.policy import ContactPolicy
from csm.suppressions.store import suppress_devices
from csm.vocabulary import NOT_ATTEMPTED_CODES, SkipReason

if TYPE_CHECKING:
    from csm.pooled import Connection

LEASE_TTL = timedelta(minutes=10)
#: How long a batch waits for accounts another pass holds before skipping them `leased`.
LEASE_WAIT = 2.0  # seconds: a batch lasts about 0.5 s
#: A pass that recorded nothing for this long no longer reserves accounts by priority.
RESERVATION_IDLE = timedelta(minutes=10)


async def claim(connection: Connection, holder: str, contact_ids: Iterable[int]) -> set[int]:
    """Lease the accounts nobody else holds; returns those this holder now has.

    Ids are inserted in ascending order, so two claims never deadlock.
    """
    rows = await connection.fetch(
        """
        INSERT INTO contact_leases (contact_id, holder, expires_at)
        SELECT id, $2, now() + $3::interval FROM unnest($1::bigint[]) AS id ORDER BY id
        ON CONFLICT (contact_id) DO UPDATE
          SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
          WHERE contact_leases.expires_at < now() OR contact_leases.holder = EXCLUDED.holder
        RETURNING contact_id
        """,
        sorted(set(contact_ids)),
        holder,
        LEASE_TTL,
    )
    return {row[0] for row in rows}


async def release(
    connection: Connection, holder: str, contact_ids: Collection[int] | None = None
) -> None:
    """Give back this holder's leases of `contact_ids` (a recorded batch: the next batch,
    leased meanwhile, keeps its own), or every lease it has (a crash settled)."""
    if contact_ids is None:
        await connection.execute("DELETE FROM contact_leases WHERE holder = $1", holder)
    elif contact_ids:
        await connection.execute(
            "DELETE FROM contact_leases WHERE holder = $1 AND contact_id = ANY($2::bigint[])",
            holder,
            list(contact_ids),
        )


async def reserved_by_priority(
    connection: Connection, campaign_id: int, contact_ids: Sequence[int]
) -> set[int]:
    """Accounts still ahead of the cursor of a running pass of a higher-priority campaign
    (of its shard's cursor, when the pass's first sweep is sharded)."""
    rows = await connection.fetch(
        """
        SELECT DISTINCT s.contact_id
        FROM pass_selections s
        JOIN pass_progress p ON p.sub_campaign_id = s.sub_campaign_id AND p.day = s.day
          AND p.pass_number = s.pass_number AND p.round = s.round
        LEFT JOIN pass_shards h ON s.round = 0 AND h.sub_campaign_id = s.sub_campaign_id
          AND h.day = s.day AND h.pass_number = s.pass_number
          AND s.seq > h.lo AND s.seq <= h.selected
        JOIN sub_campaigns sc ON sc.id = s.sub_campaign_id
        JOIN campaigns c ON c.id = sc.campaign_id
        WHERE s.contact_id = ANY($1::bigint[]) AND s.seq > coalesce(h.cursor, p.cursor)
          AND NOT p.finished
          AND coalesce(h.updated_at, p.updated_at) > now() - $3::interval
          AND c.priority > (SELECT priority FROM campaigns WHERE id = $2)
        """,
        list(contact_ids),
        campaign_id,
        RESERVATION_IDLE,
    )
    return {row[0] for row in rows}


async def final_outcomes(
    connection: Connection, campaign_id: int, contact_ids: Sequence[int]
) -> dict[int, SkipReason]:
    """Accounts that reached a final response group: here (`final`) or elsewhere."""
    rows = await connection.fetch(
        """
        SELECT contact_id, bool_or(campaign_id = $2) AS here FROM final_outcomes
        WHERE contact_id = ANY($1::bigint[])
          AND (scope = 'all_campaigns' OR campaign_id = $2)
        GROUP BY contact_id
        """,
        list(contact_ids),
        campaign_id,
    )
    return {
        row["contact_id"]: SkipReason.FINAL if row["here"] else SkipReason.FINAL_ELSEWHERE
        for row in rows
    }


async def recent_attempts(
    connection: Connection,
    contact_ids: Sequence[int],
    since: datetime,
    *,
    with_devices: bool,
) -> dict[int, list[PastAttempt]]:
    """Each account's counted attempts (any campaign, any channel) after `since`: real
    tries, and contact-level `unknown` rows a crash left (the attempt may have gone out)."""
    # One index probe per account (ix_attempts_contact): OFFSET 0 keeps the planner from
    # flattening the lateral into a scan of the whole ledger, which it would pick while
    # the ledger's statistics lag behind a pass that is filling it.
    rows = await connection.fetch(
        f"""
        SELECT a.contact_id, a.attempted_at, a.channel, a.result,
               {"d.value" if with_devices else "NULL"} AS device
        FROM unnest($1::bigint[]) AS ids(id)
        CROSS JOIN LATERAL (
          SELECT * FROM attempts x
          WHERE x.contact_id = ids.id AND x.attempted_at > $2
            AND (x.device_id <> 0 OR x.result = 'unknown') AND x.result <> ALL($3::text[])
          OFFSET 0) a
        {"LEFT JOIN devices d ON d.id = a.device_id" if with_devices else ""}
        ORDER BY a.attempted_at
        """,  # the interpolations are fixed SQL fragments
        list(contact_ids),
        since,
        sorted(NOT_ATTEMPTED_CODES),
    )
    history: dict[int, list[PastAttempt]] = {}
    for row in rows:
        history.setdefault(row["contact_id"], []).append(
            PastAttempt(row["attempted_at"], row["channel"], row["device"], row["result"])
        )
    return history


async def connected_today(
    connection: Connection,
    sub_campaign_id: int,
    day: date,
    contact_ids: Sequence[int],
    since: datetime,
) -> set[int]:
    """Accounts this sub-campaign connected to an agent on `day` (after `since`): a pass
    running alongside another never connects one contact twice."""
    rows = await connection.fetch(
        """
        SELECT ids.id FROM unnest($1::bigint[]) AS ids(id)
        WHERE EXISTS (
          SELECT 1 FROM attempts x
          WHERE x.contact_id = ids.id AND x.attempted_at > $4 AND x.sub_campaign_id = $2
            AND x.day = $3 AND x.result = 'agent_connected')
        """,
        list(contact_ids),
        sub_campaign_id,
        day,
        since,
    )
    return {row[0] for row in rows}


@dataclass
class BatchGate:
    """What the checks of one batch need, read once its accounts are leased."""

    policy: ContactPolicy
    blocked: dict[int, str] = field(default_factory=dict)  # contact → skip reason
    history: dict[int, list[PastAttempt]] = field(default_factory=dict)
    rules: CapRules = field(init=False)
    _hours: dict[tuple[str, str | None], tuple[time, time] | None] = field(
        init=False, default_factory=dict
    )
    _caps_on: bool = field(init=False)
    #: No history, no block: every cap allows at least one attempt (no max of 0).
    _first_is_free: bool = field(init=False)

    def __post_init__(self) -> None:
        self.rules = CapRules.of(self.policy)
        self._caps_on = self.policy.enforces_caps
        self._first_is_free = all(cap.max > 0 for cap in self.rules.caps)

    def hours(self, channel: str, state: str | None) -> tuple[time, time] | None:
        """The policy's hours for a channel and state, parsed once per batch."""
        key = (channel, state)
        if key not in self._hours:
            self._hours[key] = self.policy.hours_for(channel, state)
        return self._hours[key]

    @classmethod
    async def open(
        cls,
        connection: Connection,
        policy: ContactPolicy,
        campaign_id: int,
        claimed: Collection[int],
        now: datetime,
        agent_day: tuple[int, date] | None = None,
    ) -> BatchGate:
        """The claimed accounts' final outcomes and, when caps apply, recent attempts.

        The policy is read by the caller for each batch: a change reaches running
        passes at their next batch.
        """
        ids = list(claimed)
        gate = cls(policy=policy)
        if not ids:
            return gate
        if agent_day is not None:
            connected = await connected_today(connection, *agent_day, ids, now - timedelta(days=2))
            gate.blocked.update(dict.fromkeys(connected, SkipReason.CONNECTED))
        gate.blocked.update(await final_outcomes(connection, campaign_id, ids))
        if policy.enforces_caps:
            gate.history = await recent_attempts(
                connection,
                ids,
                now - policy.lookback,
                with_devices=any(cap.per == "device" for cap in policy.caps),
            )
        return gate

    def add(self, other: BatchGate) -> None:
        """Take in what was read for accounts claimed later in the batch."""
        self.blocked.update(other.blocked)
        self.history.update(other.history)

    def closed(self, channel: str, state: str | None, local: datetime) -> SkipReason | None:
        """A holiday, or the policy's hours for this channel closed on the contact's clock."""
        hours = self.hours(channel, state)
        if hours is None:
            return None
        if local.date() in self.policy.holidays:
            return SkipReason.HOLIDAY
        if not hours[0] <= local.time() < hours[1]:
            return SkipReason.OUTSIDE_WINDOW
        return None

    def blocking(
        self,
        contact_id: int,
        channel: str,
        device: str,
        at: datetime,
        zone: ZoneInfo,
        state: str | None,
    ) -> str | None:
        """The cap (or conversation pause) that forbids attempting `device` now, if any."""
        if not self._caps_on:
            return None
        history = self.history.get(contact_id)
        if not history and self._first_is_free:
            return None  # the common case in a pass: the checker would count nothing
        return blocking_rule(
            self.rules,
            history or (),
            channel=channel,
            device=device,
            at=at,
            zone=zone,
            state=state,
        )

    def attempted(
        self, contact_id: int, at: datetime, channel: str, device: str, result: str
    ) -> None:
        """Count an attempt the pass just made, for its next check of this account."""
        if self._caps_on and result not in NOT_ATTEMPTED_CODES:
            self.history.setdefault(contact_id, []).append(PastAttempt(at, channel, device, result))

    def per_device(self, rule: str) -> bool:
        return self.rules.per_device(rule)

    @staticmethod
    def reason(rule: str) -> str:
        """The skip reason a rule gives: `capped:<cap>` or `recent_conversation`."""
        if rule == CONVERSATION_PAUSE:
            return SkipReason.RECENT_CONVERSATION
        return f"{SkipReason.CAPPED}:{rule}"


async def record_consequences(
    connection: Connection,
    *,
    campaign_id: int,
    final_codes: Mapping[str, Sequence[tuple[str, str]]],
    reached: Sequence[tuple[int, str, datetime]],
    opted_out: Sequence[int],
    bounced: Sequence[int],
) -> None:
    """What a batch's results change for every campaign, written with the batch's rows:
    final outcomes (by group and scope), a STOP reply's opt-out, a hard bounce."""
    finals = [
        (contact_id, group, scope, at)
        for contact_id, result, at in reached
        for group, scope in final_codes.get(result, ())
    ]
    if finals:
        await connection.execute(
            """
            INSERT INTO final_outcomes (contact_id, campaign_id, group_name, scope, reached_at)
            SELECT f.contact_id, $1, f.group_name, f.scope, f.reached_at
            FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
              AS f(contact_id, group_name, scope, reached_at)
            ON CONFLICT DO NOTHING
            """,
            campaign_id,
            *(list(column) for column in zip(*finals, strict=True)),
        )
    for device_ids, reason in ((opted_out, "stop_reply"), (bounced, "hard_bounce")):
        if device_ids:
            await suppress_devices(connection, device_ids, reason)
