"""Leasing a batch's accounts, so no other pass attempts them meanwhile and caps count
every attempt; accounts another pass holds are tried again as their leases free up."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from csm.compliance.gate import LEASE_WAIT, BatchGate, claim, reserved_by_priority
from csm.compliance.policy import ContactPolicy
from csm.ledger import PassKey, ShardKey
from csm.passes.attempts import BatchContext, RoundPlan, attempt_batch
from csm.passes.contact import Contact
from csm.passes.context import PassRun
from csm.vocabulary import SkipReason

if TYPE_CHECKING:
    from csm.pooled import Connection


def holder(key: PassKey) -> str:
    """The lease holder's name: one pass round (or one shard of it), whichever worker runs
    it; a shard releasing its batch's leases leaves the other shards' leases alone."""
    name = f"{key.sub_campaign_id}:{key.day:%Y%m%d}:{key.pass_number}:{key.round}"
    return f"{name}:s{key.shard}" if isinstance(key, ShardKey) else name


@dataclass(slots=True)
class Leased:
    """A batch's accounts leased, and what their checks read once leased."""

    gate: BatchGate
    claimed: set[int]
    blocked: dict[int, SkipReason]  # reserved by a higher-priority campaign: not leased


@dataclass(slots=True)
class Batch:
    """A batch in hand: seqs (start, last] of the round, its contacts (maybe fewer: some
    recorded already, or windows not open yet), maybe leased already."""

    start: int
    last: int
    contacts: list[Contact]
    policy: ContactPolicy | None = None
    leased: Leased | None = None


async def _checks_of(
    run: PassRun,
    connection: Connection,
    plan: RoundPlan,
    policy: ContactPolicy,
    claimed: set[int],
) -> BatchGate:
    """What the checks of the accounts just leased read: final outcomes, recent attempts
    and, on a pass with agents, who was connected to an agent today."""
    params = run.params
    agent_day = (params.sub_campaign_id, params.day) if plan.calls else None
    return await BatchGate.open(
        connection, policy, params.campaign_id, claimed, run.clock.now(), agent_day
    )


async def lease(
    run: PassRun,
    connection: Connection,
    plan: RoundPlan,
    batch: list[Contact],
    policy: ContactPolicy,
) -> Leased:
    """Leave accounts a higher-priority campaign reserves, lease the others nobody
    holds, and read what their checks need (final outcomes, recent attempts)."""
    ids = [c.contact_id for c in batch]
    blocked: dict[int, SkipReason] = {}
    if policy.enforces_caps:
        reserved = await reserved_by_priority(connection, run.params.campaign_id, ids)
        blocked = dict.fromkeys(reserved, SkipReason.RESERVED)
    claimed = await claim(connection, holder(plan.key), [i for i in ids if i not in blocked])
    gate = await _checks_of(run, connection, plan, policy, claimed)
    gate.blocked.update(blocked)
    return Leased(gate, claimed, blocked)


async def work_batch(
    run: PassRun,
    connection: Connection,
    plan: RoundPlan,
    batch: Batch,
    stopping: asyncio.Event,
) -> tuple[BatchContext, set[int]]:
    """Lease the batch's accounts (unless leased ahead) and attempt them; accounts
    another pass holds are tried again as their leases free up (for up to LEASE_WAIT),
    then skipped `leased`.

    Returns the batch's context (rows and consequences) and the seqs handled.
    """
    contacts, start = batch.contacts, batch.start
    if batch.policy is None:
        context = BatchContext.of(run, plan, start, None, stopping)
        return context, await attempt_batch(run, contacts, context, start)
    leased = batch.leased or await lease(run, connection, plan, contacts, batch.policy)
    context = BatchContext.of(run, plan, start, leased.gate, stopping)
    context.leased.extend(leased.claimed)
    free = leased.claimed | leased.blocked.keys()  # blocked: skipped at once, not waited for
    ready = [c for c in contacts if c.contact_id in free]
    waiting = [c for c in contacts if c.contact_id not in free]
    handled = await attempt_batch(run, ready, context, start)
    handled |= await _when_free(run, connection, batch.policy, context, waiting)
    return context, handled


async def _when_free(
    run: PassRun,
    connection: Connection,
    policy: ContactPolicy,
    context: BatchContext,
    waiting: list[Contact],
) -> set[int]:
    """Attempt the batch's contacts whose accounts another pass held, as their leases
    free up; those still held after LEASE_WAIT are skipped `leased`."""
    gate, plan, handled = context.gate, context.plan, set()
    assert gate is not None
    deadline = time.monotonic() + LEASE_WAIT
    while waiting and not context.stopping.is_set():
        if time.monotonic() >= deadline:
            gate.blocked.update(dict.fromkeys((c.contact_id for c in waiting), SkipReason.LEASED))
            claimed = {c.contact_id for c in waiting}
        else:
            await asyncio.sleep(0.1)
            claimed = await claim(connection, holder(plan.key), [c.contact_id for c in waiting])
            if not claimed:
                continue
            context.leased.extend(claimed)
            gate.add(await _checks_of(run, connection, plan, policy, claimed))
        ready = [c for c in waiting if c.contact_id in claimed]
        waiting = [c for c in waiting if c.contact_id not in claimed]
        handled |= await attempt_batch(run, ready, context, context.start)
    return handled
