"""The sweep of a round: its batches from the cursor, read ahead, attempted, recorded."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg

from csm.compliance.gate import release
from csm.compliance.store import load_policy
from csm.database import driver_connection
from csm.ledger import PassKey, mark_inflight, progress
from csm.passes.attempts import BatchContext, RoundPlan, calls_for
from csm.passes.clock import Pacer
from csm.passes.contact import Contact
from csm.passes.context import PassRun
from csm.passes.leases import Batch, holder, lease, work_batch
from csm.passes.reading import load
from csm.passes.recording import record, record_after
from csm.passes.windows import opened

#: How long one batch should take: the most work a crash can leave `unknown`.
BATCH_SECONDS = 0.5


async def sweep(run: PassRun, connection: asyncpg.Connection, key: PassKey) -> None:
    """Work the round from its cursor, batch by batch, with the stages overlapped.

    While batch i is leased and attempted on `connection`, batch i+1 is read on a
    second connection and batch i-1 is recorded on a third (one record at a time, in
    order). Batch i is marked in flight before its first attempt and batch i-1's
    record leaves that mark, so a crash leaves at most two batches `unknown`; each
    record releases its own batch's leases only.
    """
    params, checks = run.params, run.tools.checks
    state = await progress(connection, key)
    assert state is not None
    cursor, selected = state["cursor"], state["selected"]
    plan = RoundPlan(
        key=key,
        pacer=Pacer(params.definition.pacing.per_minute),
        calls=await calls_for(run, connection),
        final_codes=params.final_codes(),
    )
    resuming = cursor > 0  # (a shard past the first always checks its first batch)
    # Batches last about BATCH_SECONDS whatever the channel's speed, so a crash leaves
    # at most that much work `unknown` and a pause lands quickly.
    size = min(params.batch_size, max(params.definition.pacing.concurrency, 16))
    async with contextlib.AsyncExitStack() as stack:
        loads = records = connection
        if selected - cursor > size:  # more than one batch: overlap the stages
            loads = await stack.enter_async_context(driver_connection(run.tools.engine))
            records = await stack.enter_async_context(driver_connection(run.tools.engine))
        overlapped = loads is not connection
        withdrawn: set[str] = set()  # addresses that replied STOP or bounced in this sweep
        ahead: asyncio.Future[Batch] | None = None
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
                    batch = await load(run, loads, key, cursor, n, resuming=resuming)
                    read = Batch(cursor, cursor + n, batch)  # seqs are dense: 1..selected
                assert read.start == cursor  # read ahead from where this batch ends
                resuming = False
                if not read.contacts:
                    cursor = read.last
                    continue
                if read.leased is None:
                    read.policy = (
                        await load_policy(connection, params.campaign_id) if checks else None
                    )
                    batch = await opened(
                        run, read.contacts, read.policy, cursor, left=selected - cursor
                    )
                    if len(batch) < len(read.contacts):
                        read.contacts, read.last = batch, batch[-1].seq
                if withdrawn:
                    withhold(read.contacts, withdrawn)
                if earlier is not None:  # one batch recorded while the next is worked
                    await asyncio.shield(earlier)
                    earlier = None
                last = read.last
                stopping = asyncio.Event()
                marking = asyncio.ensure_future(mark_inflight(connection, key, last))
                try:
                    await asyncio.shield(marking)
                except asyncio.CancelledError:  # marked, maybe: record nothing, unmark
                    await marking
                    stopping.set()
                if overlapped and last < selected and not stopping.is_set():
                    ahead = asyncio.ensure_future(
                        read_ahead(run, loads, plan, last, min(size, selected - last))
                    )
                work = asyncio.ensure_future(work_batch(run, connection, plan, read, stopping))
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
                    done_to = handled_to(read.contacts, handled, cursor)
                    await record(run, connection, context, done_to)
                    raise asyncio.CancelledError
                took = time.monotonic() - began
                withdrawn |= withdrawn_in(read.contacts, context)
                # Scheduled at once (no await between the attempts and their record): a
                # pause arriving now still finds the batch recorded, in order.
                earlier, recording = (
                    recording,
                    asyncio.ensure_future(
                        record_after(
                            recording, run, records, context, last, next_inflight=overlapped
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
                    await release(loads, holder(key), unused.claimed)
            if recording is not None:
                await asyncio.shield(recording)


async def read_ahead(
    run: PassRun, connection: asyncpg.Connection, plan: RoundPlan, cursor: int, size: int
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
