"""The pass activity: one sweep through the contacts a pass selects, exact across crashes.

1. Freeze the selection (once per pass; a retry finds it in the database).
2. Settle a batch left in flight by a crash: its contacts get `unknown`, not a resend.
3. Work the rest in batches from the cursor: per contact, check consent and the
   calling window at the moment of the attempt, then try its devices in the
   pass's order until one reaches someone; record the batch and move the cursor
   in one transaction; heartbeat.
On cancellation (pause or stop) the batch in hand is finished and recorded
first, so the next run resumes exactly at the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import DateTime, Integer, SmallInteger, cast, func, insert, literal
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from csm.channels import AttemptOutcome, AttemptRequest, ChannelProvider, Channels
from csm.filters import check_filter
from csm.ledger import (
    ROUND,
    AttemptRow,
    PassKey,
    count_pass,
    mark_inflight,
    progress,
    record_batch,
    settle_inflight,
    skip_remaining,
)
from csm.plan import PassCounts
from csm.selection import contacts, frozen_selection, selection_query
from csm.strategy.model import PassDefinition
from csm.tables import PassProgress, PassSelection
from csm.vocabulary import NOT_ATTEMPTED_CODES, RESULT_CODES, Channel, SkipReason

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
#: How long one batch should take: the most work a crash can leave `unknown`.
BATCH_SECONDS = 0.5


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
    batch_size: int = 2000  # the largest batch; batches adapt to last about BATCH_SECONDS
    close_reason: str | None = None  # set: do not attempt, skip the rest with this reason


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


class _Clock:
    """Now, on the server's clock: the attempt's scheduled time plus the time elapsed since.

    In production that is the wall clock; under the time-skipping test server it is
    the skipped time, so windows and days agree with the workflow's.
    """

    def __init__(self) -> None:
        try:
            origin = activity.info().current_attempt_scheduled_time
        except RuntimeError:
            origin = None
        self.origin = origin or datetime.now(UTC)
        self.started = time.monotonic()

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=time.monotonic() - self.started)


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
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True, slots=True)
class _BatchContext:
    """What every attempt of a batch shares, worked out once per batch."""

    provider: ChannelProvider
    pacer: _Pacer
    try_number: int
    key_prefix: str  # of the stable attempt key: sub-campaign, day, pass
    template: string.Template | None
    subject: string.Template | None

    @classmethod
    def of(
        cls, params: PassInput, channels: Channels, pacer: _Pacer, try_number: int
    ) -> _BatchContext:
        definition = params.definition
        return cls(
            provider=channels.for_channel(definition.channel),
            pacer=pacer,
            try_number=try_number,
            key_prefix=f"{params.sub_campaign_id}-{params.day:%Y%m%d}-{params.pass_number}-",
            template=string.Template(definition.template) if definition.template else None,
            subject=string.Template(definition.subject) if definition.subject else None,
        )


class PassActivities:
    """Bound to the worker's database engine and channel providers."""

    def __init__(self, engine: AsyncEngine, channels: Channels):
        self.engine = engine
        self.channels = channels
        self._zones: dict[str, ZoneInfo] = {}

    def zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    @activity.defn(name="run_pass")
    async def run_pass(self, params: PassInput) -> PassCounts:
        clock = _Clock()
        first = PassKey(params.sub_campaign_id, params.day, params.pass_number)
        await self._freeze(params, clock)
        async with self.engine.connect() as sa_connection:
            raw = await sa_connection.get_raw_connection()
            connection: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
            key = first
            while True:
                await self._settle(connection, key, params, clock)
                if params.close_reason:
                    await skip_remaining(
                        connection,
                        key,
                        campaign_id=params.campaign_id,
                        channel=params.definition.channel.value,
                        reason=params.close_reason,
                        now=clock.now(),
                    )
                else:
                    await self._sweep(connection, key, params, clock)
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

    async def _settle(
        self, connection: asyncpg.Connection, key: PassKey, params: PassInput, clock: _Clock
    ) -> None:
        unknown = await settle_inflight(
            connection,
            key,
            campaign_id=params.campaign_id,
            channel=params.definition.channel.value,
            now=clock.now(),
        )
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
        while (wait := (due - clock.now()).total_seconds()) > 0:
            activity.heartbeat()
            await asyncio.sleep(min(wait, 1.0))
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
            status = await connection.execute(
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
            selected = int(status.split()[-1])
            await connection.execute(
                f"UPDATE pass_progress SET selected = $5 {ROUND}", *key.round_args, selected
            )
        return selected > 0

    async def _freeze(self, params: PassInput, clock: _Clock) -> None:
        """Store the selection once, ordered by when each contact's window opens."""
        definition = params.definition
        node = check_filter(definition.filter, params.response_groups)
        among = None
        if definition.source == "previous" and params.previous_selection is not None:
            previous_day, previous_number = params.previous_selection
            among = contacts.c.id.in_(
                frozen_selection(params.sub_campaign_id, previous_day, previous_number)
            )
        order = [contacts.c.id]
        window = definition.window
        if window is not None and window.zone == "contact":
            local_open = datetime.combine(params.day, window.start)
            opens = func.timezone(
                func.coalesce(contacts.c.timezone, params.campaign_timezone),
                cast(literal(local_open), DateTime(timezone=False)),
            )
            order = [opens, contacts.c.id]
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
            inserted = await connection.execute(
                insert(selections).from_select(
                    ["sub_campaign_id", "day", "pass_number", "seq", "contact_id"], query
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
        state = await progress(connection, key)
        assert state is not None
        cursor, selected = state["cursor"], state["selected"]
        pacer = _Pacer(params.definition.pacing.per_minute)
        resuming = cursor > 0
        # Batches last about BATCH_SECONDS whatever the channel's speed, so a crash leaves
        # at most that much work `unknown` and a pause lands quickly.
        size = min(params.batch_size, max(params.definition.pacing.concurrency, 16))
        while cursor < selected:
            batch = await self._load(connection, key, params, cursor, size, resuming=resuming)
            resuming = False
            last = min(cursor + size, selected)  # seqs are dense: 1..selected
            if not batch:
                cursor = last
                continue
            await mark_inflight(connection, key, last)
            stopping = asyncio.Event()
            work = asyncio.ensure_future(
                self._attempt_batch(batch, params, clock, pacer, stopping, cursor, key.round)
            )
            began = time.monotonic()
            try:
                rows, done_to = await asyncio.shield(work)
            except asyncio.CancelledError:
                # Pause or stop: finish the attempts in hand, record them, then stop.
                stopping.set()
                rows, done_to = await work
                await record_batch(connection, key, rows, done_to)
                activity.heartbeat(done_to)
                raise
            await record_batch(connection, key, rows, last)
            cursor = last
            activity.heartbeat(cursor)
            took = time.monotonic() - began
            if took < BATCH_SECONDS / 2:
                size = min(size * 2, params.batch_size)
            elif took > BATCH_SECONDS * 2:
                size = max(size // 2, params.definition.pacing.concurrency, 16)

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
                   d.id AS device_id, d.kind, d.value,
                   EXISTS (SELECT 1 FROM suppressions su WHERE su.contact_id = c.id
                           AND (su.campaign_id IS NULL OR su.campaign_id = $9)) AS suppressed,
                   EXISTS (SELECT 1 FROM suppressions su WHERE su.device_value = d.value
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
                    " AND contact_id = ANY($4::bigint[])",
                    *key.args,
                    [c.contact_id for c in batch],
                )
            )
            batch = [c for c in batch if c.contact_id not in done]
        return batch

    async def _attempt_batch(
        self,
        batch: list[_Contact],
        params: PassInput,
        clock: _Clock,
        pacer: _Pacer,
        stopping: asyncio.Event,
        cursor: int,
        try_number: int,
    ) -> tuple[list[AttemptRow], int]:
        """Attempt the batch in `concurrency` lanes; stop taking contacts once `stopping` is set.

        Returns the rows and the new cursor: the highest seq up to which every contact
        of the batch was handled (contacts handled past it are skipped on resume).
        """
        rows: list[AttemptRow] = []
        handled: set[int] = set()
        pending = iter(batch)
        lanes = min(params.definition.pacing.concurrency, len(batch))
        context = _BatchContext.of(params, self.channels, pacer, try_number)
        has_window = params.definition.window is not None

        async def lane() -> None:
            for number, contact in enumerate(pending):
                if stopping.is_set():
                    return
                if has_window and not await self._window_open(
                    contact, params, clock, stopping, cursor
                ):
                    return  # stopping while waiting for this contact's window
                rows.extend(await self._attempt_contact(contact, params, clock, context))
                handled.add(contact.seq)
                if number % 32 == 0:
                    activity.heartbeat(cursor)  # lets a pause or stop reach us mid-batch

        await asyncio.gather(*(lane() for _ in range(lanes)))
        done_to = cursor
        for contact in batch:
            if contact.seq not in handled:
                break
            done_to = contact.seq
        return rows, done_to

    def _window_zone(self, contact: _Contact, params: PassInput) -> ZoneInfo:
        window = params.definition.window
        assert window is not None
        if window.zone == "contact":
            return contact.zone
        return self.zone(params.campaign_timezone if window.zone == "campaign" else window.zone)

    async def _window_open(
        self,
        contact: _Contact,
        params: PassInput,
        clock: _Clock,
        stopping: asyncio.Event,
        cursor: int,
    ) -> bool:
        """Wait (heartbeating) until the contact's window opens today; False if told to stop.

        The selection is ordered by window opening, so a pass that starts when the
        first zone opens works the later zones as their windows open.
        """
        window = params.definition.window
        if window is None:
            return True
        zone = self._window_zone(contact, params)
        local = clock.now().astimezone(zone)
        if local.time() >= window.start:
            return True
        opens = datetime.combine(local.date(), window.start, tzinfo=zone)
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
        definition = params.definition
        try_number = context.try_number
        now = clock.now()
        base = (
            params.sub_campaign_id,
            params.campaign_id,
            params.day,
            params.pass_number,
            contact.contact_id,
        )
        channel = definition.channel.value

        def skip(reason: SkipReason) -> list[AttemptRow]:
            return [(*base, 0, try_number, channel, "skipped", reason.value, now)]

        if contact.suppressed:
            return skip(SkipReason.SUPPRESSED)
        if not contact.consented:
            return skip(SkipReason.NO_CONSENT)
        if not contact.devices:
            if contact.suppressed_devices:
                return skip(SkipReason.SUPPRESSED)
            return skip(SkipReason.NO_ELIGIBLE_DEVICE)
        local = now.astimezone(contact.zone)
        window = definition.window
        if window is not None:
            clock_time = now.astimezone(self._window_zone(contact, params)).time()
            if not (window.start <= clock_time < window.end):
                return skip(SkipReason.OUTSIDE_WINDOW)
        message = subject = None
        if context.template:
            message = context.template.safe_substitute(contact.attributes)
        if context.subject:
            subject = context.subject.safe_substitute(contact.attributes)
        rows: list[AttemptRow] = []
        for device_id, kind, address in contact.devices:
            if context.pacer.interval:
                await context.pacer.wait()
            request = AttemptRequest(
                attempt_key=f"{context.key_prefix}{contact.contact_id}-{device_id}-{try_number}",
                contact_id=contact.contact_id,
                device_id=device_id,
                try_number=try_number,
                device_kind=kind,
                address=address,
                channel=definition.channel,
                local_hour=local.hour,
                message=message,
                subject=subject,
            )
            try:
                outcome = await context.provider.attempt(request)
            except ConnectionError:
                outcome = await self._send_after_outage(context.provider, request)
            rows.append((*base, device_id, try_number, channel, outcome.result, None, clock.now()))
            if outcome.result not in NEXT_DEVICE:
                break
        return rows

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
