"""The pass activity: one sweep through the contacts a pass selects, exact across crashes.

1. Freeze the selection (once per pass; a retry finds it in the database).
2. Settle a batch left in flight by a crash: its contacts get `unknown`, not a resend.
3. Work the rest in batches from the cursor: lease the batch's accounts (so no
   other pass attempts them meanwhile and caps count every attempt), then per
   contact check the contact policy at the moment of the attempt (suppression,
   consent, final outcomes, hours, caps; `csm.compliance`), try its devices in
   the pass's order until one reaches someone; record the batch, its
   consequences and the cursor and release the leases in one transaction;
   heartbeat.
On cancellation (pause or stop) the batch in hand is finished and recorded
first, so the next run resumes exactly at the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import TypeVar
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    SmallInteger,
    case,
    cast,
    func,
    insert,
    literal,
    null,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from csm import metrics
from csm.agents import AgentDesk, CallRef, HoldQueue, SimulatedAgentDesk
from csm.channels import AttemptOutcome, AttemptRequest, ChannelProvider, Channels
from csm.compliance.gate import (
    LEASE_WAIT,
    BatchGate,
    claim,
    record_consequences,
    release,
    reserved_by_priority,
)
from csm.compliance.policy import ContactPolicy
from csm.compliance.store import load_policy
from csm.database import driver_connection
from csm.dialer import LIVE, DialerLines, LiveAnswers, abandon_history
from csm.filters import check_filter
from csm.ledger import (
    ROUND,
    AttemptRow,
    PassKey,
    ShardKey,
    count_pass,
    join_shards,
    mark_inflight,
    progress,
    record_batch,
    rewind_inflight,
    settle_inflight,
    shards_of,
    skip_remaining,
    split_round,
)
from csm.plan import PassCounts, WaitNote
from csm.selection import contacts, frozen_selection, selection_query
from csm.strategy.model import MAX_SHARDS, PassDefinition
from csm.tables import PassProgress, PassSelection
from csm.vocabulary import NOT_ATTEMPTED_CODES, RESULT_CODES, UNKNOWN, Channel, SkipReason

#: Results after which the pass tries the contact's next device.
NEXT_DEVICE = frozenset(
    {"busy", "no_answer", "bad_device", "not_connected", "undelivered_machine", "failed", "bounced"}
)
#: Results worth another try of the same device, in a later round after the pass's gap.
RETRYABLE = frozenset({"busy", "no_answer", "not_connected", "failed"})
#: Results that end the pass for a contact: someone or something was reached (or may have been).
ENDS_CONTACT = RESULT_CODES - NEXT_DEVICE - NOT_ATTEMPTED_CODES
CONSENT_COLUMN = {
    Channel.VOICE: "consent_voice",
    Channel.DIALER: "consent_voice",
    Channel.SMS: "consent_sms",
    Channel.EMAIL: "consent_email",
}
PROVIDER_OUTAGE_LIMIT = timedelta(minutes=10)
_T = TypeVar("_T")
#: How often a long statement heartbeats (the workflows' heartbeat timeout is 10 s).
HEARTBEAT_SECONDS = 2.0
#: How long one batch should take: the most work a crash can leave `unknown`.
BATCH_SECONDS = 0.5
#: How long sending a pass's note to its workflow may take.
NOTE_TIMEOUT = timedelta(seconds=5)


@dataclass
class PassInput:
    """Ids, codes and strategy text only: no personal data."""

    sub_campaign_id: int
    campaign_id: int
    list_id: int
    day: date
    pass_number: int
    definition: PassDefinition
    response_groups: dict[str, list[str]]
    campaign_timezone: str
    previous_selection: tuple[date, int] | None = None  # for source = "previous"
    final_groups: dict[str, str] = field(default_factory=dict)  # group name → final scope
    batch_size: int = 2000  # the largest batch; batches adapt to last about BATCH_SECONDS
    close_reason: str | None = None  # set: do not attempt, skip the rest with this reason
    # `pacing.shards` > 1: the workflow runs shards 0..shards-1 of round 0 at once, then
    # the whole pass (shard None), which finds round 0 done and works the retry rounds.
    shard: int | None = None
    shards: int = 1

    def check(self) -> None:
        """Refuse a shard that is not one (a starter script's mistake): not retried."""
        if not 1 <= self.shards <= MAX_SHARDS or (
            self.shard is not None and not 0 <= self.shard < self.shards
        ):
            raise ApplicationError(
                f"pass {self.pass_number}: shard {self.shard} of {self.shards} is not a shard"
                f" (shards 1 to {MAX_SHARDS}, shard 0 to shards - 1)",
                type="BadPassInput",
                non_retryable=True,
            )

    def for_shard(self) -> PassInput:
        """The input as one shard works it: its share of the pass's pacing."""
        pacing = self.definition.pacing.shared(self.shards)
        return replace(self, definition=self.definition.model_copy(update={"pacing": pacing}))


@dataclass
class _Contact:
    seq: int
    contact_id: int
    zone: ZoneInfo
    consented: bool
    devices: list[tuple[int, str, str]]  # (device id, kind, address) in try order
    attributes: dict = field(default_factory=dict)
    suppressed: bool = False  # the account is on a suppression list
    suppressed_devices: int = 0  # devices left out because they are suppressed
    state: str | None = None  # the `state` attribute: per-state hours and caps


class _Clock:
    """Now, on the server's clock: the attempt's scheduled time plus the time elapsed since.

    In production that is the wall clock; under the time-skipping test server it is
    the skipped time, so windows and days agree with the workflow's.

    It ticks once a millisecond: a pass asks the time several times per attempt, and
    building a datetime (and a contact's local time) costs more than a fast attempt.
    """

    #: The clock's resolution, in seconds.
    TICK = 0.001

    def __init__(self) -> None:
        try:
            origin = activity.info().current_attempt_scheduled_time
        except RuntimeError:
            origin = None
        self.origin = origin or datetime.now(UTC)
        self.started = time.monotonic()
        self._tick = -1.0
        self._now = self.origin
        self._local: dict[ZoneInfo, datetime] = {}

    def now(self) -> datetime:
        tick = time.monotonic()
        if tick - self._tick >= self.TICK:
            self._tick = tick
            self._now = self.origin + timedelta(seconds=tick - self.started)
            self._local.clear()
        return self._now

    def local(self, zone: ZoneInfo) -> datetime:
        """Now on a zone's clock (the same tick as `now`)."""
        now = self.now()
        local = self._local.get(zone)
        if local is None:
            local = self._local[zone] = now.astimezone(zone)
        return local


class _Notes:
    """Why the pass waits, told to its workflow (signal `pass_note`) when it changes: the
    note `csm status`, the web page and the Temporal UI show, "" once the pass works again.

    Signals go out in order, one at a time, and never hold up the pass: a note that cannot
    be sent is logged and dropped (the pass's work does not depend on it). Without a
    Temporal client (a pass run directly, as benchmarks do) notes are kept, not sent.
    """

    def __init__(self, pass_number: int) -> None:
        self.pass_number = pass_number
        self.shown = ""
        self._sent: asyncio.Future[None] | None = None
        try:
            info = activity.info()
            client = activity.client()
        except RuntimeError:
            self._handle = None
        else:
            self._handle = client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)

    def set(self, note: str) -> None:
        if note == self.shown:
            return
        self.shown = note
        if self._handle is not None:
            self._sent = asyncio.ensure_future(self._send(self._sent, note))

    async def _send(self, previous: asyncio.Future[None] | None, note: str) -> None:
        if previous is not None:
            await previous
        assert self._handle is not None
        try:
            await self._handle.signal(
                "pass_note", WaitNote(self.pass_number, note), rpc_timeout=NOTE_TIMEOUT
            )
        except Exception as error:  # whatever it is, a lost note must not fail the pass
            activity.logger.warning("pass %s: note not sent: %s", self.pass_number, error)

    async def sent(self) -> None:
        """Wait for the notes in flight (before the activity returns)."""
        if self._sent is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._sent)


#: The running pass's notes (each activity task has its own).
_notes: ContextVar[_Notes | None] = ContextVar("csm_pass_notes", default=None)


def _note(note: str) -> None:
    """Set the running pass's note (nothing outside a pass)."""
    if (notes := _notes.get()) is not None:
        notes.set(note)


class _Pacer:
    """At most `per_minute` attempts started per minute (None: unpaced)."""

    def __init__(self, per_minute: int | None):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next_slot = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        while (wait := slot - time.monotonic()) > 0:  # a slow pace still heartbeats
            activity.heartbeat()
            await asyncio.sleep(min(wait, 1.0))


@dataclass(frozen=True, slots=True)
class _BatchContext:
    """What every attempt of a batch shares, worked out once per batch, and what the
    batch collects: its ledger rows and the devices that opted out or bounced."""

    provider: ChannelProvider
    pacer: _Pacer
    try_number: int
    start: int  # the cursor the batch starts from: its contacts are seqs past it
    rows: list[AttemptRow]
    key_prefix: str  # of the stable attempt key: sub-campaign, day, pass
    head: tuple[int, int, date, int]  # every row's sub-campaign, campaign, day, pass
    channel: str
    template: string.Template | None
    subject: string.Template | None
    gate: BatchGate | None  # None: compliance checks off (benchmarks only)
    calls: _Calls | None  # live answers and dialer lines of a pass with agents
    stopping: asyncio.Event  # set on pause or stop: no new contact is started
    opted_out: list[int] = field(default_factory=list)  # device ids that replied STOP
    bounced: list[int] = field(default_factory=list)  # e-mail device ids that hard-bounced
    leased: list[int] = field(default_factory=list)  # accounts this batch holds leases on

    @classmethod
    def of(
        cls,
        params: PassInput,
        channels: Channels,
        pacer: _Pacer,
        try_number: int,
        start: int,
        gate: BatchGate | None,
        calls: _Calls | None,
        stopping: asyncio.Event,
    ) -> _BatchContext:
        definition = params.definition
        return cls(
            gate=gate,
            calls=calls,
            stopping=stopping,
            rows=[],
            provider=channels.for_channel(definition.channel),
            pacer=pacer,
            try_number=try_number,
            start=start,
            key_prefix=f"{params.sub_campaign_id}-{params.day:%Y%m%d}-{params.pass_number}-",
            head=(params.sub_campaign_id, params.campaign_id, params.day, params.pass_number),
            channel=definition.channel.value,
            template=string.Template(definition.template) if definition.template else None,
            subject=string.Template(definition.subject) if definition.subject else None,
        )


@dataclass(slots=True)
class _Leased:
    """A batch's accounts leased, and what their checks read once leased."""

    gate: BatchGate
    claimed: set[int]
    blocked: dict[int, SkipReason]  # reserved by a higher-priority campaign: not leased


@dataclass(slots=True)
class _Ahead:
    """The batch after the one being worked: seqs (cursor, last], maybe leased already."""

    cursor: int
    last: int
    batch: list[_Contact]
    policy: ContactPolicy | None = None
    leased: _Leased | None = None


@dataclass(frozen=True, slots=True)
class _Calls:
    """A pass whose live answers go to agents: what answers become, and its dialer lines."""

    live: LiveAnswers
    lines: DialerLines | None  # dialer passes only


class PassActivities:
    """Bound to the worker's database engine, channel providers and agent desk.

    `checks=False` turns the contact policy off; only benchmarks do that, to
    measure what the checks cost.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        channels: Channels,
        *,
        checks: bool = True,
        desk: AgentDesk | None = None,
    ):
        self.engine = engine
        self.channels = channels
        self.checks = checks
        self.hold_queue = HoldQueue(desk or SimulatedAgentDesk(engine))
        self._zones: dict[str, ZoneInfo] = {}

    def zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    @activity.defn(name="run_pass")
    async def run_pass(self, params: PassInput) -> PassCounts:
        notes = _Notes(params.pass_number)
        token = _notes.set(notes)
        try:
            with metrics.pass_run(params.definition.channel.value):  # timed, rows counted
                return await self._run_pass(params)
        finally:
            _notes.reset(token)
            await notes.sent()

    async def _run_pass(self, params: PassInput) -> PassCounts:
        params.check()
        clock = _Clock()
        first = PassKey(params.sub_campaign_id, params.day, params.pass_number)
        async with driver_connection(self.engine) as connection:
            policy = await load_policy(connection, params.campaign_id) if self.checks else None
            await self._freeze(params, clock, policy=policy)
            if params.shard is not None:  # one shard of round 0; the others run alongside
                for part in await split_round(connection, first, params.shards, clock.now()):
                    if part.shard == params.shard:
                        await self._work(connection, part, params.for_shard(), clock)
                return await count_pass(connection, first)
            # The whole pass: first whatever its shards left (after a stop, or shards that
            # could not finish), then round 0 as a whole, then the retry rounds.
            if parts := await shards_of(connection, first):
                for part in parts:
                    await self._work(connection, part, params, clock)
                await join_shards(connection, first)
            key = first
            while True:
                await self._work(connection, key, params, clock)
                if key.round >= params.definition.retries.per_device:
                    break
                following = key.next_round()
                if params.close_reason:
                    if await progress(connection, following) is None:
                        break
                elif not await self._freeze_retry(connection, following, params, clock):
                    break
                key = following
            await connection.execute(
                f"UPDATE pass_progress SET finished = true {ROUND}", *first.round_args
            )
            return await count_pass(connection, first)

    async def _work(
        self, connection: asyncpg.Connection, key: PassKey, params: PassInput, clock: _Clock
    ) -> None:
        """Settle what a crash left in flight, then sweep the rest of the round (or of the
        shard), or skip it all with the close reason."""
        await self._settle(connection, key, params, clock)
        if params.close_reason:
            skipped = await skip_remaining(
                connection,
                key,
                campaign_id=params.campaign_id,
                channel=params.definition.channel.value,
                reason=params.close_reason,
                now=clock.now(),
            )
            _count(params, "skipped", params.close_reason, skipped)
        else:
            await self._sweep(connection, key, params, clock)

    async def _settle(
        self, connection: asyncpg.Connection, key: PassKey, params: PassInput, clock: _Clock
    ) -> None:
        """Close the batch a crash left in flight. A provider that answers a repeated attempt
        key from its record (no second call) lets the sweep simply work the batch again;
        otherwise its contacts without a row are recorded `unknown`, never resent. Passes with
        agents always settle `unknown`: a repeated live answer would take a second agent."""
        provider = self.channels.for_channel(params.definition.channel)
        if getattr(provider, "idempotent", False) and not params.definition.agents:
            if await rewind_inflight(connection, key):
                activity.logger.info(
                    "pass %s try %s: the batch in flight at a crash is worked again; the"
                    " provider answers attempts it already placed from its record",
                    params.pass_number,
                    key.round,
                )
            if self.checks:
                await release(connection, _holder(key))
            return
        unknown = await settle_inflight(
            connection,
            key,
            campaign_id=params.campaign_id,
            channel=params.definition.channel.value,
            now=clock.now(),
        )
        _count(params, UNKNOWN, None, unknown)
        if self.checks:
            await release(connection, _holder(key))
        if unknown:
            activity.logger.warning(
                "pass %s try %s: %d attempts in flight at a crash recorded as unknown",
                params.pass_number,
                key.round,
                unknown,
            )

    async def _freeze_retry(
        self, connection: asyncpg.Connection, key: PassKey, params: PassInput, clock: _Clock
    ) -> bool:
        """Freeze round `key.round`: contacts whose devices gave a retryable result in the
        previous round and whom nothing has reached, once the pass's gap has passed since the
        previous round's last attempt. False: nobody to retry."""
        existing = await progress(connection, key)
        if existing is not None:
            return existing["selected"] > 0
        last_try = await connection.fetchval(
            "SELECT max(attempted_at) FROM attempts WHERE sub_campaign_id = $1 AND day = $2"
            " AND pass_number = $3 AND try_number = $4",
            *key.args,
            key.round - 1,
        )
        due = (last_try or clock.now()) + params.definition.retries.gap  # the minimum gap
        if due > clock.now():
            retry_at = due.astimezone(UTC)
            _note(f"waiting for the retry gap: try {key.round + 1} from {retry_at:%H:%M} UTC")
        while (wait := (due - clock.now()).total_seconds()) > 0:
            activity.heartbeat()
            await asyncio.sleep(min(wait, 1.0))
        _note("")
        async with connection.transaction():
            claimed = await connection.fetchval(
                "INSERT INTO pass_progress (sub_campaign_id, day, pass_number, round, started_at,"
                " selected, cursor, finished, updated_at) VALUES ($1, $2, $3, $4, $5, 0, 0, false,"
                " now()) ON CONFLICT DO NOTHING RETURNING round",
                *key.round_args,
                clock.now(),
            )
            if claimed is None:
                return True
            status = await _heartbeating(
                connection.execute(
                    """
                WITH per_contact AS (
                  SELECT contact_id,
                         bool_or(try_number = $4 - 1 AND result = ANY($5::text[])) AS retry,
                         bool_or(result = ANY($6::text[])) AS ended
                  FROM attempts
                  WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3
                  GROUP BY contact_id)
                INSERT INTO pass_selections (sub_campaign_id, day, pass_number, round, seq,
                                             contact_id)
                SELECT $1, $2, $3, $4, row_number() OVER (ORDER BY s.seq), s.contact_id
                FROM pass_selections s JOIN per_contact p ON p.contact_id = s.contact_id
                WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3
                  AND s.round = $4 - 1 AND p.retry AND NOT p.ended
                """,
                    *key.round_args,
                    sorted(RETRYABLE),
                    sorted(ENDS_CONTACT),
                )
            )
            selected = int(status.split()[-1])
            await connection.execute(
                f"UPDATE pass_progress SET selected = $5 {ROUND}", *key.round_args, selected
            )
        return selected > 0

    async def _freeze(
        self, params: PassInput, clock: _Clock, *, policy: ContactPolicy | None
    ) -> None:
        """Store the selection once, ordered by when each contact's window opens: the later
        of the pass's window and the policy's hours for the contact's state (read on the
        contact's clock). Contacts whose window is open come first, so a state whose hours
        open later waits at the end instead of holding up the contacts behind it."""
        definition = params.definition
        node = check_filter(definition.filter, params.response_groups)
        among = None
        if definition.source == "previous" and params.previous_selection is not None:
            previous_day, previous_number = params.previous_selection
            among = contacts.c.id.in_(
                frozen_selection(params.sub_campaign_id, previous_day, previous_number)
            )
        order: list[ColumnElement] = [contacts.c.id]
        opens = _opening(params, policy)
        if opens is not None:
            order = [opens.asc().nulls_first(), contacts.c.id]
        query = selection_query(
            list_id=params.list_id,
            node=node,
            response_groups=params.response_groups,
            sub_campaign_id=params.sub_campaign_id,
            day=params.day,
            among=among,
        ).with_only_columns(
            literal(params.sub_campaign_id, Integer),
            literal(params.day),
            literal(params.pass_number, SmallInteger),
            func.row_number().over(order_by=order),
            contacts.c.id,
        )
        progress_table = PassProgress.__table__
        selections = PassSelection.__table__
        async with self.engine.begin() as connection:
            claimed = await connection.execute(
                postgresql.insert(progress_table)
                .values(
                    sub_campaign_id=params.sub_campaign_id,
                    day=params.day,
                    pass_number=params.pass_number,
                    round=0,
                    started_at=clock.now(),
                    selected=0,
                    cursor=0,
                    finished=False,
                )
                .on_conflict_do_nothing()
                .returning(progress_table.c.pass_number)
            )
            if claimed.first() is None:
                return  # frozen by an earlier try of this pass
            inserted = await _heartbeating(
                connection.execute(
                    insert(selections).from_select(
                        ["sub_campaign_id", "day", "pass_number", "seq", "contact_id"], query
                    )
                )
            )
            await connection.execute(
                progress_table.update()
                .where(
                    progress_table.c.sub_campaign_id == params.sub_campaign_id,
                    progress_table.c.day == params.day,
                    progress_table.c.pass_number == params.pass_number,
                    progress_table.c.round == 0,
                )
                .values(selected=inserted.rowcount)
            )

    async def _sweep(
        self, connection: asyncpg.Connection, key: PassKey, params: PassInput, clock: _Clock
    ) -> None:
        """Work the round from its cursor, batch by batch, with the stages overlapped.

        While batch i is leased and attempted on `connection`, batch i+1 is read on a
        second connection and batch i-1 is recorded on a third (one record at a time, in
        order). Batch i is marked in flight before its first attempt and batch i-1's
        record leaves that mark, so a crash leaves at most two batches `unknown`; each
        record releases its own batch's leases only.
        """
        state = await progress(connection, key)
        assert state is not None
        cursor, selected = state["cursor"], state["selected"]
        pacer = _Pacer(params.definition.pacing.per_minute)
        resuming = cursor > 0  # (a shard past the first always checks its first batch)
        final_codes = _final_codes(params)
        # Batches last about BATCH_SECONDS whatever the channel's speed, so a crash leaves
        # at most that much work `unknown` and a pause lands quickly.
        size = min(params.batch_size, max(params.definition.pacing.concurrency, 16))
        calls = await self._calls(connection, params)
        async with contextlib.AsyncExitStack() as stack:
            loads = records = connection
            if selected - cursor > size:  # more than one batch: overlap the stages
                loads = await stack.enter_async_context(driver_connection(self.engine))
                records = await stack.enter_async_context(driver_connection(self.engine))
            overlapped = loads is not connection
            withdrawn: set[str] = set()  # addresses that replied STOP or bounced in this sweep
            ahead: asyncio.Future[_Ahead] | None = None
            # The last batch's record, and the one before it (each waits for its previous).
            recording: asyncio.Future[None] | None = None
            earlier: asyncio.Future[None] | None = None
            try:
                while cursor < selected:
                    if not overlapped and recording is not None:  # one connection: in turn
                        await asyncio.shield(recording)
                        recording = None
                    read = await asyncio.shield(ahead) if ahead is not None else None
                    ahead = None
                    if read is None:
                        n = min(size, selected - cursor)
                        batch = await self._load(loads, key, params, cursor, n, resuming=resuming)
                        read = _Ahead(cursor, cursor + n, batch)  # seqs are dense: 1..selected
                    assert read.cursor == cursor  # read ahead from where this batch ends
                    batch, last, policy, leased = read.batch, read.last, read.policy, read.leased
                    resuming = False
                    if not batch:
                        cursor = last
                        continue
                    if leased is None:
                        policy = (
                            await load_policy(connection, params.campaign_id)
                            if self.checks
                            else None
                        )
                        opened = await self._opened(
                            batch, params, clock, policy, cursor, left=selected - cursor
                        )
                        if len(opened) < len(batch):
                            batch, last = opened, opened[-1].seq
                    if withdrawn:
                        _withhold(batch, withdrawn)
                    if earlier is not None:  # one batch recorded while the next is worked
                        await asyncio.shield(earlier)
                        earlier = None
                    stopping = asyncio.Event()
                    marking = asyncio.ensure_future(mark_inflight(connection, key, last))
                    try:
                        await asyncio.shield(marking)
                    except asyncio.CancelledError:  # marked, maybe: record nothing, unmark
                        await marking
                        stopping.set()
                    if overlapped and last < selected and not stopping.is_set():
                        ahead = asyncio.ensure_future(
                            self._read_ahead(
                                loads, key, params, clock, last, min(size, selected - last), calls
                            )
                        )
                    work = asyncio.ensure_future(
                        self._work_batch(
                            connection,
                            batch,
                            key,
                            params,
                            clock,
                            pacer,
                            stopping,
                            cursor,
                            policy,
                            calls,
                            leased,
                        )
                    )
                    began = time.monotonic()
                    try:
                        context, handled = await asyncio.shield(work)
                    except asyncio.CancelledError:
                        stopping.set()
                        context, handled = await work
                    if stopping.is_set():
                        # Pause or stop: the attempts in hand finished, record them (after the
                        # batch before), then stop.
                        if recording is not None:
                            await asyncio.shield(recording)
                        recording = None
                        done_to = _handled_to(batch, handled, cursor)
                        await self._record(connection, key, params, context, done_to, final_codes)
                        raise asyncio.CancelledError
                    took = time.monotonic() - began
                    withdrawn |= _withdrawn(batch, context)
                    # Scheduled at once (no await between the attempts and their record): a
                    # pause arriving now still finds the batch recorded, in order.
                    earlier, recording = (
                        recording,
                        asyncio.ensure_future(
                            self._record_after(
                                recording,
                                records,
                                key,
                                params,
                                context,
                                last,
                                final_codes,
                                next_inflight=overlapped,
                            )
                        ),
                    )
                    cursor = last
                    if took < BATCH_SECONDS / 2:
                        size = min(size * 2, params.batch_size)
                    elif took > BATCH_SECONDS * 2:
                        size = max(size // 2, params.definition.pacing.concurrency, 16)
            finally:
                # Whatever ends the sweep, the batch being recorded is committed (or fails)
                # before its connection goes back; a batch read ahead is given back.
                if ahead is not None:
                    await asyncio.wait([ahead])
                    unused = None
                    if not ahead.cancelled() and ahead.exception() is None:
                        unused = ahead.result().leased
                    if unused is not None:
                        await release(loads, _holder(key), unused.claimed)
                if recording is not None:
                    await asyncio.shield(recording)

    async def _record_after(
        self,
        previous: asyncio.Future[None] | None,
        connection: asyncpg.Connection,
        key: PassKey,
        params: PassInput,
        context: _BatchContext,
        cursor: int,
        final_codes: dict[str, list[tuple[str, str]]],
        *,
        next_inflight: bool,
    ) -> None:
        """Record a batch once the batch before it is recorded (cursors only move forward)."""
        if previous is not None:
            await previous
        await self._record(
            connection, key, params, context, cursor, final_codes, next_inflight=next_inflight
        )

    async def _record(
        self,
        connection: asyncpg.Connection,
        key: PassKey,
        params: PassInput,
        context: _BatchContext,
        cursor: int,
        final_codes: dict[str, list[tuple[str, str]]],
        *,
        next_inflight: bool = False,
    ) -> None:
        """The batch's rows, the cursor, what the results mean for every campaign (final
        outcomes, STOP replies, hard bounces) and the leases' release: one transaction.

        `next_inflight`: the next batch is being worked meanwhile; its in-flight mark and
        its leases stay. The cursor's row is updated last: a mark of the next batch waits
        on its lock only for the commit.
        """
        async with connection.transaction():
            if context.gate is not None:
                await record_consequences(
                    connection,
                    campaign_id=params.campaign_id,
                    final_codes=final_codes,
                    reached=[
                        (row.contact_id, row.result, row.attempted_at)
                        for row in context.rows
                        if row.result in final_codes
                    ],
                    opted_out=context.opted_out,
                    bounced=context.bounced,
                )
                await release(connection, _holder(key), context.leased)
            await record_batch(
                connection,
                key,
                context.rows,
                cursor,
                start=context.start,
                keep_later_inflight=next_inflight,
            )
        if (counted := metrics.current()) is not None:
            counted.recorded(context.rows)  # committed: count them once
        activity.heartbeat(cursor)

    async def _work_batch(
        self,
        connection: asyncpg.Connection,
        batch: list[_Contact],
        key: PassKey,
        params: PassInput,
        clock: _Clock,
        pacer: _Pacer,
        stopping: asyncio.Event,
        cursor: int,
        policy: ContactPolicy | None,
        calls: _Calls | None,
        leased: _Leased | None = None,
    ) -> tuple[_BatchContext, set[int]]:
        """Lease the batch's accounts (unless `leased` ahead) and attempt them; accounts
        another pass holds are tried again as their leases free up (for up to LEASE_WAIT),
        then skipped `leased`.

        Returns the batch's context (rows and consequences) and the seqs handled.
        """
        if policy is None:
            context = _BatchContext.of(
                params, self.channels, pacer, key.round, cursor, None, calls, stopping
            )
            handled = await self._attempt_batch(batch, params, clock, context, stopping, cursor)
            return context, handled
        if leased is None:
            leased = await self._lease(connection, batch, key, params, clock, policy, calls)
        gate, claimed, blocked = leased.gate, leased.claimed, leased.blocked
        holder = _holder(key)
        agent_day = (params.sub_campaign_id, params.day) if calls else None
        context = _BatchContext.of(
            params, self.channels, pacer, key.round, cursor, gate, calls, stopping
        )
        context.leased.extend(claimed)
        ready = [c for c in batch if c.contact_id in claimed or c.contact_id in blocked]
        waiting = [c for c in batch if c.contact_id not in claimed and c.contact_id not in blocked]
        handled = await self._attempt_batch(ready, params, clock, context, stopping, cursor)
        deadline = time.monotonic() + LEASE_WAIT
        while waiting and not stopping.is_set():
            if time.monotonic() >= deadline:
                gate.blocked.update(
                    dict.fromkeys((c.contact_id for c in waiting), SkipReason.LEASED)
                )
                claimed = {c.contact_id for c in waiting}
            else:
                await asyncio.sleep(0.1)
                claimed = await claim(connection, holder, [c.contact_id for c in waiting])
                if not claimed:
                    continue
                context.leased.extend(claimed)
                gate.add(
                    await BatchGate.open(
                        connection, policy, params.campaign_id, claimed, clock.now(), agent_day
                    )
                )
            ready = [c for c in waiting if c.contact_id in claimed]
            waiting = [c for c in waiting if c.contact_id not in claimed]
            handled |= await self._attempt_batch(ready, params, clock, context, stopping, cursor)
        return context, handled

    async def _lease(
        self,
        connection: asyncpg.Connection,
        batch: list[_Contact],
        key: PassKey,
        params: PassInput,
        clock: _Clock,
        policy: ContactPolicy,
        calls: _Calls | None,
    ) -> _Leased:
        """Leave accounts a higher-priority campaign reserves, lease the others nobody
        holds, and read what their checks need (final outcomes, recent attempts)."""
        ids = [c.contact_id for c in batch]
        blocked: dict[int, SkipReason] = {}
        if policy.enforces_caps:
            reserved = await reserved_by_priority(connection, params.campaign_id, ids)
            blocked = dict.fromkeys(reserved, SkipReason.RESERVED)
        claimed = await claim(connection, _holder(key), [i for i in ids if i not in blocked])
        agent_day = (params.sub_campaign_id, params.day) if calls else None
        gate = await BatchGate.open(
            connection, policy, params.campaign_id, claimed, clock.now(), agent_day
        )
        gate.blocked.update(blocked)
        return _Leased(gate, claimed, blocked)

    async def _read_ahead(
        self,
        connection: asyncpg.Connection,
        key: PassKey,
        params: PassInput,
        clock: _Clock,
        cursor: int,
        size: int,
        calls: _Calls | None,
    ) -> _Ahead:
        """The next batch, read while this one is worked; leased too when every window
        of it is open now (else the sweep waits for them first, and leases after)."""
        batch = await self._load(connection, key, params, cursor, size, resuming=False)
        ahead = _Ahead(cursor, cursor + size, batch)
        if batch and self.checks:
            policy = await load_policy(connection, params.campaign_id)
            if len(await self._opened(batch, params, clock, policy, cursor, wait=False)) == len(
                batch
            ):
                ahead.policy = policy
                ahead.leased = await self._lease(
                    connection, batch, key, params, clock, policy, calls
                )
        return ahead

    async def _load(
        self,
        connection: asyncpg.Connection,
        key: PassKey,
        params: PassInput,
        cursor: int,
        size: int,
        *,
        resuming: bool,
    ) -> list[_Contact]:
        """The next batch past `cursor`, each contact with its devices in the pass's order."""
        definition = params.definition
        kinds = [kind.value for kind in definition.devices]
        with_attributes = bool(definition.template or definition.subject)
        records = await connection.fetch(
            f"""
            SELECT s.seq, c.id, c.timezone, c.{CONSENT_COLUMN[definition.channel]} AS consented,
                   {"c.attributes::text" if with_attributes else "NULL"} AS attributes,
                   upper(c.attributes->>'state') AS state,
                   d.id AS device_id, d.kind, d.value,
                   EXISTS (SELECT 1 FROM suppressions su
                           WHERE su.value = c.account_key AND su.kind = 'account'
                           AND (su.campaign_id IS NULL OR su.campaign_id = $9)) AS suppressed,
                   EXISTS (SELECT 1 FROM suppressions su
                           WHERE su.value = d.value AND su.kind <> 'account'
                           AND (su.campaign_id IS NULL OR su.campaign_id = $9))
                     AS device_suppressed
            FROM pass_selections s
            JOIN contacts c ON c.id = s.contact_id
            LEFT JOIN devices d ON d.contact_id = c.id AND d.kind = ANY($6::text[])
              AND ($7 = 0 OR d.id IN (
                SELECT a.device_id FROM attempts a
                WHERE a.sub_campaign_id = $1 AND a.day = $2 AND a.pass_number = $3
                  AND a.contact_id = c.id AND a.try_number = $7 - 1
                  AND a.result = ANY($8::text[])))
            WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3
              AND s.round = $7 AND s.seq > $4 AND s.seq <= $5
            ORDER BY s.seq, array_position($6::text[], d.kind), d.position
            """,  # the only interpolations are fixed column names
            *key.args,
            cursor,
            cursor + size,
            kinds,
            key.round,
            sorted(RETRYABLE),
            params.campaign_id,
        )
        batch: list[_Contact] = []
        for r in records:
            if not batch or batch[-1].seq != r["seq"]:
                batch.append(
                    _Contact(
                        seq=r["seq"],
                        contact_id=r["id"],
                        zone=self.zone(r["timezone"] or params.campaign_timezone),
                        consented=r["consented"],
                        devices=[],
                        attributes=json.loads(r["attributes"]) if r["attributes"] else {},
                        state=r["state"],
                    )
                )
            contact = batch[-1]
            contact.suppressed = contact.suppressed or r["suppressed"]
            if r["device_id"] is None:
                continue
            if r["device_suppressed"]:
                contact.suppressed_devices += 1
            else:
                contact.devices.append((r["device_id"], r["kind"], r["value"]))
        if resuming and batch:
            # A pause may have recorded contacts past the cursor (lanes finish out of order).
            done = set(
                await connection.fetchval(
                    "SELECT coalesce(array_agg(contact_id), '{}') FROM attempts"
                    " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3"
                    " AND contact_id = ANY($4::bigint[]) AND try_number = $5",
                    *key.args,
                    [c.contact_id for c in batch],
                    key.round,  # this round's rows: every contact of a retry round has others
                )
            )
            batch = [c for c in batch if c.contact_id not in done]
        return batch

    async def _attempt_batch(
        self,
        batch: list[_Contact],
        params: PassInput,
        clock: _Clock,
        context: _BatchContext,
        stopping: asyncio.Event,
        cursor: int,
    ) -> set[int]:
        """Attempt `batch` in `concurrency` lanes, adding rows to `context`; stop taking
        contacts once `stopping` is set. Returns the seqs of the contacts handled."""
        handled: set[int] = set()
        if not batch:
            return handled
        pending = iter(batch)
        lanes = min(params.definition.pacing.concurrency, len(batch))

        async def lane() -> None:
            for number, contact in enumerate(pending):
                if stopping.is_set():
                    return
                try:
                    context.rows.extend(
                        await self._attempt_contact(contact, params, clock, context)
                    )
                except _NotStarted:
                    return  # stopping while waiting for a dialer line: resumed later
                handled.add(contact.seq)
                if number % 32 == 0:
                    activity.heartbeat(cursor)  # lets a pause or stop reach us mid-batch

        await asyncio.gather(*(lane() for _ in range(lanes)))
        return handled

    def _window_zone(self, contact: _Contact, params: PassInput) -> ZoneInfo:
        window = params.definition.window
        assert window is not None
        if window.zone == "contact":
            return contact.zone
        return self.zone(params.campaign_timezone if window.zone == "campaign" else window.zone)

    async def _opened(
        self,
        batch: list[_Contact],
        params: PassInput,
        clock: _Clock,
        policy: ContactPolicy | None,
        cursor: int,
        *,
        wait: bool = True,
        left: int = 0,
    ) -> list[_Contact]:
        """The batch's leading contacts whose windows are open, after waiting for the first
        (`wait=False`: those open now, maybe none). While it waits, the pass's note says for
        what, for how many contacts (`left` in the round) and until when.

        The selection is ordered by window opening, so a pass that starts when the
        first zone opens works the later zones as their windows open. The wait comes
        before the batch is claimed: no account is leased while its window is closed.
        """
        if params.definition.window is None and policy is None:
            return batch
        channel = params.definition.channel.value
        by_state: dict[tuple[str | None, ZoneInfo], tuple[dt_time, dt_time] | None] = {}
        today = clock.now()

        def hours(contact: _Contact) -> tuple[dt_time, dt_time] | None:
            """The policy's hours for the contact; None on a holiday of its calendar (the
            attempt's check skips it at once: a holiday never opens, so nobody waits)."""
            if policy is None:
                return None
            key = (contact.state, contact.zone)
            if key not in by_state:
                on_holiday = today.astimezone(contact.zone).date() in policy.holidays
                by_state[key] = None if on_holiday else policy.hours_for(channel, contact.state)
            return by_state[key]

        if wait:
            first = batch[0]
            if note := self._wait_note(first, params, clock.now(), hours(first), left):
                _note(note)
            await self._window_open(
                first, params, clock, asyncio.Event(), cursor, hours=hours(first)
            )
            if note:
                _note("")  # open: the pass works again
        now = clock.now()
        opening: dict[tuple[ZoneInfo, str | None], datetime] = {}  # by the contact's zone, state
        for n, contact in enumerate(batch):
            at = opening.get((contact.zone, contact.state))
            if at is None:
                at = opening[contact.zone, contact.state] = self._opens_at(
                    contact, params, now, hours(contact)
                )
            if at > now:
                return batch[:n]
        return batch

    def _opens_at(
        self,
        contact: _Contact,
        params: PassInput,
        now: datetime,
        hours: tuple[dt_time, dt_time] | None,
    ) -> datetime:
        """When today both the pass's window and the policy's hours are open (at the latest
        of their openings; `now` if both are open already or have no opening left today)."""
        openings = [now]
        window = params.definition.window
        if window is not None:
            zone = self._window_zone(contact, params)
            openings.append(datetime.combine(now.astimezone(zone).date(), window.start, zone))
        if hours is not None:
            zone = contact.zone
            openings.append(datetime.combine(now.astimezone(zone).date(), hours[0], zone))
        return max(openings)

    def _wait_note(
        self,
        contact: _Contact,
        params: PassInput,
        now: datetime,
        hours: tuple[dt_time, dt_time] | None,
        left: int,
    ) -> str | None:
        """Why the pass waits for `contact` (the first of the contacts left, in opening
        order): counts and times only. None when its windows are open now."""
        opens = self._opens_at(contact, params, now, hours)
        if opens <= now:
            return None
        local = opens.astimezone(contact.zone)
        what = "its window"
        if hours is not None and datetime.combine(local.date(), hours[0], contact.zone) >= opens:
            what = "calling hours"
        return (
            f"waiting for {what}: {left:,} contact{'s' if left != 1 else ''} left, the next"
            f" open at {local:%H:%M} on their clock ({opens.astimezone(UTC):%H:%M} UTC)"
        )

    async def _window_open(
        self,
        contact: _Contact,
        params: PassInput,
        clock: _Clock,
        stopping: asyncio.Event,
        cursor: int,
        *,
        hours: tuple[dt_time, dt_time] | None = None,
    ) -> bool:
        """Wait (heartbeating) until the contact's windows are open; False if told to stop."""
        opens = self._opens_at(contact, params, clock.now(), hours)
        while (wait := (opens - clock.now()).total_seconds()) > 0:
            activity.heartbeat(cursor)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=min(wait, 1.0))
            if stopping.is_set():
                return False
        return True

    async def _attempt_contact(
        self, contact: _Contact, params: PassInput, clock: _Clock, context: _BatchContext
    ) -> list[AttemptRow]:
        """One contact: the checks, then its devices in order until one reaches someone.

        The hot path of a pass (once per contact): the batch's shared values come from
        `context`, times from the ticking clock.
        """
        definition = params.definition
        try_number = context.try_number
        contact_id = contact.contact_id
        channel = context.channel
        gate = context.gate
        reason: str | None = None
        if contact.suppressed:
            reason = SkipReason.SUPPRESSED
        elif not contact.consented:
            reason = SkipReason.NO_CONSENT
        elif gate is not None and contact_id in gate.blocked:
            reason = gate.blocked[contact_id]
        elif not contact.devices:
            reason = (
                SkipReason.SUPPRESSED
                if contact.suppressed_devices
                else SkipReason.NO_ELIGIBLE_DEVICE
            )
        else:
            local = clock.local(contact.zone)
            window = definition.window
            if window is not None:
                clock_time = clock.local(self._window_zone(contact, params)).time()
                if not (window.start <= clock_time < window.end):
                    reason = SkipReason.OUTSIDE_WINDOW
            if reason is None and gate is not None:
                reason = gate.closed(channel, contact.state, local)
        if reason is not None:
            return [
                AttemptRow(
                    *context.head,
                    contact_id,
                    0,
                    try_number,
                    channel,
                    "skipped",
                    str(reason),
                    clock.now(),
                )
            ]
        message = subject = None
        if context.template:
            message = context.template.safe_substitute(contact.attributes)
        if context.subject:
            subject = context.subject.safe_substitute(contact.attributes)
        rows: list[AttemptRow] = []
        held_by: str | None = None
        provider = context.provider
        for device_id, kind, address in contact.devices:
            if gate is not None:
                held_by = gate.blocking(
                    contact_id, channel, address, clock.now(), contact.zone, contact.state
                )
                if held_by is not None:
                    if gate.per_device(held_by):
                        continue  # this number's own cap: the next device may still be tried
                    break
            if context.pacer.interval:
                await context.pacer.wait()
            request = AttemptRequest(
                attempt_key=f"{context.key_prefix}{contact_id}-{device_id}-{try_number}",
                day=params.day,
                pass_number=params.pass_number,
                contact_id=contact_id,
                device_id=device_id,
                try_number=try_number,
                device_kind=kind,
                address=address,
                channel=definition.channel,
                local_hour=local.hour,
                message=message,
                subject=subject,
            )
            if context.calls is None:  # no agents: straight to the provider (_call's first half)
                try:
                    result = (await provider.attempt(request)).result
                except ConnectionError:
                    result = (await self._send_after_outage(provider, request)).result
            else:
                result = await self._call(context, request, params, first=not rows)
            at = clock.now()
            rows.append(
                AttemptRow(
                    *context.head, contact_id, device_id, try_number, channel, result, None, at
                )
            )
            if result not in NEXT_DEVICE:  # the contact is done: no later check to count for
                if result == "opted_out" and gate is not None:
                    context.opted_out.append(device_id)
                return rows
            if gate is not None:  # the next device's cap check counts this attempt
                gate.attempted(contact_id, at, channel, address, result)
                if result == "bounced":
                    context.bounced.append(device_id)
        if held_by is not None:  # a cap stopped the devices: say which
            assert gate is not None
            reason = gate.reason(held_by)
            rows.append(
                AttemptRow(
                    *context.head,
                    contact_id,
                    0,
                    try_number,
                    channel,
                    "skipped",
                    reason,
                    clock.now(),
                )
            )
        return rows

    async def _call(
        self, context: _BatchContext, request: AttemptRequest, params: PassInput, *, first: bool
    ) -> str:
        """One attempt through the provider; on a pass with agents, a dialer line first and
        a live answer connected to an agent (or abandoned) after.

        A pause or stop ends the wait for a line only before the contact's first device
        (raising _NotStarted): once a device was tried, the contact is finished.
        """
        calls = context.calls
        lines = calls.lines if calls else None
        if lines is not None and not await lines.acquire(context.stopping if first else None):
            raise _NotStarted
        result = UNKNOWN
        try:
            try:
                outcome = await context.provider.attempt(request)
            except ConnectionError:
                outcome = await self._send_after_outage(context.provider, request)
            result = outcome.result
            if result == LIVE and calls is not None:
                result = await calls.live.answered(
                    CallRef(
                        key=request.attempt_key,
                        sub_campaign_id=params.sub_campaign_id,
                        day=params.day,
                        pass_number=params.pass_number,
                        contact_id=request.contact_id,
                    )
                )
        finally:
            if lines is not None:
                lines.release(result)
        return result

    async def _calls(self, connection: asyncpg.Connection, params: PassInput) -> _Calls | None:
        definition = params.definition
        group = definition.agent_group
        if group is None:
            return None
        live = LiveAnswers(
            queue=self.hold_queue,
            group=group,
            channel=definition.channel,
            hold_seconds=definition.pacing.hold.total_seconds(),
            heartbeat=activity.heartbeat,
        )
        if definition.channel is not Channel.DIALER:
            return _Calls(live, None)
        answered, abandoned = await abandon_history(connection, params.campaign_id)
        lines = DialerLines(
            desk=self.hold_queue.desk,
            group=group,
            predictive=definition.pacing.mode == "predictive",
            abandon_limit=definition.pacing.abandon_limit,
            live=answered,
            abandoned=abandoned,
            heartbeat=activity.heartbeat,
            note=_note,
        )
        return _Calls(live, lines)

    async def _send_after_outage(
        self, provider: ChannelProvider, request: AttemptRequest
    ) -> AttemptOutcome:
        """A provider that could not be reached (nothing was sent): try again, heartbeating,
        for up to PROVIDER_OUTAGE_LIMIT; then the activity fails and Temporal retries it."""
        waited = 0.0
        delay = 0.5
        while True:
            activity.heartbeat()
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
            try:
                return await provider.attempt(request)
            except ConnectionError:
                if waited >= PROVIDER_OUTAGE_LIMIT.total_seconds():
                    raise


class _NotStarted(Exception):
    """A contact given back untouched: the pass stopped while it waited for a line."""


def _holder(key: PassKey) -> str:
    """The lease holder's name: one pass round (or one shard of it), whichever worker runs
    it; a shard releasing its batch's leases leaves the other shards' leases alone."""
    holder = f"{key.sub_campaign_id}:{key.day:%Y%m%d}:{key.pass_number}:{key.round}"
    return f"{holder}:s{key.shard}" if isinstance(key, ShardKey) else holder


def _count(params: PassInput, result: str, reason: str | None, n: int) -> None:
    """Count `n` committed ledger rows written outside a batch (settled or closed)."""
    if (counted := metrics.current()) is not None:
        counted.written(params.definition.channel.value, result, reason, n)


def _handled_to(batch: list[_Contact], handled: set[int], cursor: int) -> int:
    """The highest seq up to which every contact of the batch was handled (contacts
    handled past it are recognised and left out on resume)."""
    done_to = cursor
    for contact in batch:
        if contact.seq not in handled:
            break
        done_to = contact.seq
    return done_to


async def _heartbeating(statement: Awaitable[_T]) -> _T:
    """Await a long statement (freezing a large selection) heartbeating meanwhile: a
    1,000,000-contact freeze outlasts the heartbeat timeout, which took it for a dead
    worker and started it over. Cancelled with the activity."""
    task = asyncio.ensure_future(statement)
    try:
        while True:
            done, _ = await asyncio.wait([task], timeout=HEARTBEAT_SECONDS)
            if done:
                return task.result()
            activity.heartbeat()
    except asyncio.CancelledError:
        task.cancel()
        raise


def _withdrawn(batch: list[_Contact], context: _BatchContext) -> set[str]:
    """The addresses of the devices that replied STOP or hard-bounced in this batch."""
    gone = set(context.opted_out) | set(context.bounced)
    if not gone:
        return set()
    return {address for c in batch for device_id, _, address in c.devices if device_id in gone}


def _withhold(batch: list[_Contact], withdrawn: set[str]) -> None:
    """Leave out devices whose address this sweep saw reply STOP or bounce: a batch read
    ahead was read before those suppressions were recorded."""
    for contact in batch:
        kept = [d for d in contact.devices if d[2] not in withdrawn]
        if len(kept) < len(contact.devices):
            contact.suppressed_devices += len(contact.devices) - len(kept)
            contact.devices = kept


def _final_codes(params: PassInput) -> dict[str, list[tuple[str, str]]]:
    """Result code → the final response groups (name, scope) it puts an account in."""
    codes: dict[str, list[tuple[str, str]]] = {}
    for group, scope in params.final_groups.items():
        for code in params.response_groups.get(group, ()):
            codes.setdefault(code, []).append((group, scope))
    return codes


def _opening(params: PassInput, policy: ContactPolicy | None) -> ColumnElement | None:
    """When each contact's window opens on the pass's day, as a UTC instant (NULL: open
    all day), for ordering the selection; None when every contact opens alike.

    The opening is the later of the pass's window (when read on the contact's clock) and
    the policy's hours for the contact's state on the pass's channel.
    """
    channel = params.definition.channel.value
    window = params.definition.window
    window_start = window.start if window is not None and window.zone == "contact" else None

    def start(hours: tuple[dt_time, dt_time] | None) -> dt_time | None:
        starts = [t for t in (hours[0] if hours else None, window_start) if t is not None]
        return max(starts, default=None)

    general = start(policy.hours_for(channel, None) if policy else None)
    by_state: dict[str, dt_time | None] = {}
    if policy is not None:
        for code in policy.states:
            if (opens := start(policy.hours_for(channel, code))) != general:
                by_state[code] = opens
    if general is None and not by_state:
        return None

    def local(at: dt_time | None) -> ColumnElement:
        if at is None:
            return null()
        return cast(literal(datetime.combine(params.day, at)), DateTime(timezone=False))

    local_open = local(general)
    if by_state:  # the state's code is a bound parameter, never spliced into the SQL
        state = func.upper(contacts.c.attributes.op("->>")("state"))
        local_open = case(
            *((state == code, local(at)) for code, at in by_state.items()), else_=local_open
        )
    return func.timezone(func.coalesce(contacts.c.timezone, params.campaign_timezone), local_open)
