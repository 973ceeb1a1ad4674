"""One run of the pass activity: freeze, settle, sweep each round (or one shard), count."""

from __future__ import annotations

from csm import metrics
from csm.compliance.store import load_policy
from csm.ledger import (
    ROUND,
    PassKey,
    count_pass,
    join_shards,
    progress,
    shards_of,
    split_round,
)
from csm.passes.clock import Clock
from csm.passes.context import PassRun, Tools
from csm.passes.input import PassInput
from csm.passes.notes import noting
from csm.passes.selection import freeze_first, freeze_retry
from csm.passes.settlement import close, settle
from csm.passes.sweep import sweep
from csm.plan import PassCounts
from csm.pooled import Connection, Pooled


async def run_pass(tools: Tools, params: PassInput) -> PassCounts:
    """Run the pass (or one shard of its first round) to its end, or until cancelled
    (pause or stop: the batch in hand is recorded first, so a next run resumes exactly)."""
    async with noting(params.pass_number):
        with metrics.pass_run(params.definition.channel.value):  # timed, rows counted
            return await _run(PassRun(params, Clock(), tools))


async def _run(run: PassRun) -> PassCounts:
    params = run.params
    params.check()
    first = PassKey(params.sub_campaign_id, params.day, params.pass_number)
    # Each statement borrows a pooled connection: none is held while the pass waits.
    connection = Pooled(run.tools.engine)
    policy = await load_policy(connection, params.campaign_id) if run.tools.checks else None
    await freeze_first(run, policy)
    if params.shard is not None:  # one shard of round 0; the others run alongside
        shard_run = PassRun(params.for_shard(), run.clock, run.tools)
        for part in await split_round(connection, first, params.shards, run.clock.now()):
            if part.shard == params.shard:
                await work(shard_run, connection, part)
        return await count_pass(connection, first)
    # The whole pass: first whatever its shards left (after a stop, or shards that
    # could not finish), then round 0 as a whole, then the retry rounds.
    if parts := await shards_of(connection, first):
        for part in parts:
            await work(run, connection, part)
        await join_shards(connection, first)
    await _rounds(run, connection, first)
    await connection.execute(f"UPDATE pass_progress SET finished = true {ROUND}", *first.round_args)
    return await count_pass(connection, first)


async def _rounds(run: PassRun, connection: Connection, first: PassKey) -> None:
    """Round 0, then each retry round while the pass has retries left and contacts to retry
    (a closed pass: the rounds already started, skipped with its reason)."""
    params, key = run.params, first
    while True:
        await work(run, connection, key)
        if key.round >= params.definition.retries.per_device:
            return
        following = key.next_round()
        if params.close_reason:
            if await progress(connection, following) is None:
                return
        elif not await freeze_retry(run, connection, following):
            return
        key = following


async def work(run: PassRun, connection: Connection, key: PassKey) -> None:
    """Settle what a crash left in flight, then sweep the rest of the round (or of the
    shard), or skip it all with the close reason."""
    await settle(run, connection, key)
    if run.params.close_reason:
        await close(run, connection, key)
    else:
        await sweep(run, connection, key)
