"""The sweep of a round: its batches from the cursor, in three stages joined by queues.

    reader ──read──▶ attempt stage ──attempted──▶ recorder
      ▲                   │
      └──────wanted───────┘

- The reader reads the batch the attempt stage asks for (`wanted`): the first one from
  the cursor, then each next one while the current one is attempted (read ahead on a
  pooled connection of its own, and leased already when all its windows are open).
- The attempt stage (the sweep's own task) waits for a batch's windows, marks it in
  flight, asks for the next, works it (leases, decisions, attempts) and hands it to the
  recorder at once (no await in between: a pause arriving then finds it recorded).
- The recorder records the batches in order, each in one transaction; each record
  releases its own batch's leases only and leaves the next batch's in-flight mark.

Each stage's statements borrow a pooled connection for themselves (csm.pooled): the
sweep holds none while it waits (for its pace, calling hours, leases or a carrier's
outcomes), so one worker's pool serves every pass it runs.

A batch is marked in flight only once the batch two before it is recorded, so a crash
leaves at most two batches `unknown`. A round of one batch or less runs the stages in
turn. A stage's error is handed on, not raised in its task:
the attempt stage raises it where it waits for that stage, and the stages end when
their input does (a None), so every batch attempted is recorded before the sweep ends.
On pause or stop (cancellation) the attempts in hand finish, the batches before are
recorded, then this one up to its last handled contact, and the sweep ends cancelled.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import NoReturn

from csm.compliance.gate import release
from csm.compliance.store import load_policy
from csm.ledger import PassKey, mark_inflight, progress
from csm.passes.attempts import BatchContext, RoundPlan, calls_for
from csm.passes.clock import Pacer
from csm.passes.contact import Contact
from csm.passes.context import PassRun
from csm.passes.leases import Batch, holder, lease, work_batch
from csm.passes.reading import load
from csm.passes.recording import record
from csm.passes.windows import opened
from csm.pooled import Connection

#: How long one batch should take: the most work a crash can leave `unknown`.
BATCH_SECONDS = 0.5
#: Batches marked in flight and not yet recorded, at most: the most a crash leaves `unknown`.
IN_FLIGHT = 2
#: Contacts a lane gets in a batch at least, when outcomes come back asynchronously.
ASYNC_LANE_CONTACTS = 8


def smallest_batch(run: PassRun) -> int:
    """A batch gives each of the pass's lanes one contact at least. A provider whose
    outcomes come back later (a real carrier: seconds to minutes a call) gives each lane
    ASYNC_LANE_CONTACTS: a batch waits for its slowest attempt, and with one contact a lane
    most lanes would sit idle behind it. Such a provider answers a repeated attempt key
    from its record, so a crash leaves none of a bigger batch `unknown`."""
    params = run.params
    lanes = params.definition.pacing.concurrency
    provider = run.tools.channels.for_channel(params.definition.channel)
    if getattr(provider, "asynchronous", False):
        return min(params.batch_size, max(lanes * ASYNC_LANE_CONTACTS, 16))
    return min(params.batch_size, max(lanes, 16))


async def sweep(run: PassRun, connection: Connection, key: PassKey) -> None:
    """Work the round from its cursor, batch by batch, with the stages overlapped."""
    params = run.params
    state = await progress(connection, key)
    assert state is not None
    cursor, selected = state["cursor"], state["selected"]
    plan = RoundPlan(
        key=key,
        pacer=Pacer(params.definition.pacing.per_minute),
        calls=await calls_for(run, connection),
        final_codes=params.final_codes(),
    )
    # Batches last about BATCH_SECONDS whatever the channel's speed, so a crash leaves
    # at most that much work `unknown` and a pause lands quickly.
    size = smallest_batch(run)
    overlapped = selected - cursor > size  # more than one batch: overlap the stages
    stages = _Stages(run, plan, connection, selected, overlapped=overlapped)
    # (a shard past the first always checks its first batch)
    await stages.work(cursor, size, resuming=cursor > 0)


@dataclass(frozen=True, slots=True)
class _Want:
    """A batch the attempt stage asks the reader for: seqs (start, start + size]."""

    start: int
    size: int
    ahead: bool  # read while the batch before is worked: leased too if its windows are open
    resuming: bool = False  # the first batch after a restart (see reading.load)


@dataclass(frozen=True, slots=True)
class _Attempted:
    """A batch attempted, for the recorder: its rows and consequences, and its last seq."""

    context: BatchContext
    last: int


class _Stages:
    """One round's sweep: the queues between its stages, the stages, and what the attempt
    stage carries from batch to batch."""

    def __init__(
        self,
        run: PassRun,
        plan: RoundPlan,
        connection: Connection,
        selected: int,
        *,
        overlapped: bool,
    ) -> None:
        self.run, self.plan, self.selected = run, plan, selected
        self.connection, self.overlapped = connection, overlapped
        self.wanted: asyncio.Queue[_Want | None] = asyncio.Queue(maxsize=1)
        self.read: asyncio.Queue[Batch | Exception] = asyncio.Queue(maxsize=1)
        self.attempted: asyncio.Queue[_Attempted | None] = asyncio.Queue(maxsize=IN_FLIGHT)
        self.in_flight = asyncio.Semaphore(IN_FLIGHT)  # released as each batch is recorded
        self.reading = False  # a batch asked for and not taken yet
        self.failed: Exception | None = None  # the recorder's error: nothing recorded after
        self.withdrawn: set[str] = set()  # addresses that replied STOP or bounced

    async def work(self, cursor: int, size: int, *, resuming: bool) -> None:
        """The stages in one TaskGroup until the round is done (or the sweep ends)."""
        ended: BaseException | None = None
        async with asyncio.TaskGroup() as group:
            group.create_task(self._reader())
            group.create_task(self._recorder())
            try:
                await self._attempt(cursor, size, resuming)
            except BaseException as error:  # pause, stop or an error: the stages end first
                ended = error
            try:
                await self._close()
            except Exception as error:
                ended = error
        if self.failed is not None:
            raise self.failed
        if ended is not None:
            raise ended

    # -- the stages ------------------------------------------------------------------

    async def _reader(self) -> None:
        """Read stage: each batch asked for; an error is handed on as the read."""
        run, plan = self.run, self.plan
        while (want := await self.wanted.get()) is not None:
            got: Batch | Exception
            try:
                if want.ahead:
                    got = await read_ahead(run, self.connection, plan, want.start, want.size)
                else:
                    contacts = await load(
                        run,
                        self.connection,
                        plan.key,
                        want.start,
                        want.size,
                        resuming=want.resuming,
                    )
                    got = Batch(want.start, want.start + want.size, contacts)  # seqs are dense
            except Exception as error:
                got = error
            self.read.put_nowait(got)

    async def _recorder(self) -> None:
        """Record stage: the batches in order; after an error, none."""
        while (done := await self.attempted.get()) is not None:
            try:
                if self.failed is None:
                    await record(
                        self.run,
                        self.connection,
                        done.context,
                        done.last,
                        next_inflight=self.overlapped,
                    )
            except Exception as error:
                self.failed = error
            finally:
                self.in_flight.release()
                self.attempted.task_done()
        self.attempted.task_done()

    async def _attempt(self, cursor: int, size: int, resuming: bool) -> None:
        """Attempt stage: the round's batches from `cursor`, in order."""
        selected = self.selected
        while cursor < selected:
            if not self.overlapped:  # one connection: the batch before is recorded first
                await self._recorded()
            batch = await self._take(cursor, min(size, selected - cursor), resuming)
            resuming = False
            if not batch.contacts:
                cursor = batch.last
                continue
            await self._open(batch, cursor)
            await self.in_flight.acquire()  # the batch two before is recorded
            self._check()
            stopping = await self._mark(batch.last)
            if self.overlapped and batch.last < selected and not stopping.is_set():
                ahead = min(size, selected - batch.last)
                self._ask(_Want(batch.last, ahead, ahead=True))
            began = time.monotonic()
            context, handled = await self._work(batch, stopping)
            if stopping.is_set():
                await self._stop(batch, context, handled, cursor)
            took = time.monotonic() - began
            self.withdrawn |= withdrawn_in(batch.contacts, context)
            self.attempted.put_nowait(_Attempted(context, batch.last))  # at once: see above
            cursor = batch.last
            size = self._resized(size, took)

    # -- the attempt stage's steps ---------------------------------------------------

    def _ask(self, want: _Want) -> None:
        self.wanted.put_nowait(want)
        self.reading = True

    async def _take(self, cursor: int, size: int, resuming: bool) -> Batch:
        """The batch from `cursor`: the one read ahead, or this one read now."""
        if not self.reading:
            self._ask(_Want(cursor, size, ahead=False, resuming=resuming))
        got = await self.read.get()
        self.reading = False
        if isinstance(got, Exception):
            raise got
        assert got.start == cursor  # read ahead from where the batch before ends
        return got

    async def _open(self, batch: Batch, cursor: int) -> None:
        """Wait for the batch's first window and keep its leading contacts whose windows
        are open (unless it was leased ahead, all open); leave out withdrawn devices."""
        if batch.leased is None:
            run = self.run
            checks = run.tools.checks
            batch.policy = (
                await load_policy(self.connection, run.params.campaign_id) if checks else None
            )
            left = self.selected - cursor
            contacts = await opened(run, batch.contacts, batch.policy, cursor, left=left)
            if len(contacts) < len(batch.contacts):
                batch.contacts, batch.last = contacts, contacts[-1].seq
        if self.withdrawn:
            withhold(batch.contacts, self.withdrawn)

    async def _mark(self, last: int) -> asyncio.Event:
        """Mark the batch in flight; the event it returns is set on pause or stop."""
        stopping = asyncio.Event()
        marking = asyncio.ensure_future(mark_inflight(self.connection, self.plan.key, last))
        try:
            await asyncio.shield(marking)
        except asyncio.CancelledError:  # marked, maybe: record nothing, unmark
            await marking
            stopping.set()
        return stopping

    async def _work(self, batch: Batch, stopping: asyncio.Event) -> tuple[BatchContext, set[int]]:
        """Work the batch to its end: a pause or stop only stops new contacts starting."""
        work = asyncio.ensure_future(
            work_batch(self.run, self.connection, self.plan, batch, stopping)
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            stopping.set()
            return await work

    async def _stop(
        self, batch: Batch, context: BatchContext, handled: set[int], cursor: int
    ) -> NoReturn:
        """Pause or stop: the attempts in hand finished; record them (after the batches
        before), then end the sweep cancelled."""
        await self._recorded()
        done_to = handled_to(batch.contacts, handled, cursor)
        await record(self.run, self.connection, context, done_to)
        raise asyncio.CancelledError

    async def _recorded(self) -> None:
        """Wait until every batch handed to the recorder is recorded."""
        await self.attempted.join()
        self._check()

    def _check(self) -> None:
        """A record failed: the sweep fails with its error."""
        if self.failed is not None:
            raise self.failed

    def _resized(self, size: int, took: float) -> int:
        """The next batch's size, so that batches last about BATCH_SECONDS."""
        params = self.run.params
        if took < BATCH_SECONDS / 2:
            return min(size * 2, params.batch_size)
        if took > BATCH_SECONDS * 2:
            return max(size // 2, smallest_batch(self.run))
        return size

    async def _close(self) -> None:
        """However the attempt stage ended: a batch read ahead and never worked gives its
        leases back, and the stages end (the recorder after recording what it was given)."""
        try:
            if self.reading:
                got = await self.read.get()
                self.reading = False
                if isinstance(got, Batch) and got.leased is not None:
                    await release(self.connection, holder(self.plan.key), got.leased.claimed)
        finally:
            await self.wanted.put(None)
            await self.attempted.put(None)


async def read_ahead(
    run: PassRun, connection: Connection, plan: RoundPlan, cursor: int, size: int
) -> Batch:
    """The next batch, read while this one is worked; leased too when every window
    of it is open now (else the sweep waits for them first, and leases after)."""
    contacts = await load(run, connection, plan.key, cursor, size, resuming=False)
    ahead = Batch(cursor, cursor + size, contacts)
    if contacts and run.tools.checks:
        policy = await load_policy(connection, run.params.campaign_id)
        if len(await opened(run, contacts, policy, cursor, wait=False)) == len(contacts):
            ahead.policy = policy
            ahead.leased = await lease(run, connection, plan, contacts, policy)
    return ahead


def handled_to(batch: list[Contact], handled: set[int], cursor: int) -> int:
    """The highest seq up to which every contact of the batch was handled (contacts
    handled past it are recognised and left out on resume)."""
    done_to = cursor
    for contact in batch:
        if contact.seq not in handled:
            break
        done_to = contact.seq
    return done_to


def withdrawn_in(batch: list[Contact], context: BatchContext) -> set[str]:
    """The addresses of the devices that replied STOP or hard-bounced in this batch."""
    gone = set(context.opted_out) | set(context.bounced)
    if not gone:
        return set()
    return {d.address for c in batch for d in c.devices if d.device_id in gone}


def withhold(batch: list[Contact], withdrawn: set[str]) -> None:
    """Leave out devices whose address this sweep saw reply STOP or bounce: a batch read
    ahead was read before those suppressions were recorded."""
    for contact in batch:
        kept = [d for d in contact.devices if d.address not in withdrawn]
        if len(kept) < len(contact.devices):
            contact.suppressed_devices += len(contact.devices) - len(kept)
            contact.devices = kept
