"""Recording a batch: its rows, what they mean for every campaign, the cursor, the leases'
release, in one transaction; and counting rows written outside a batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from csm import metrics
from csm.compliance.gate import record_consequences, release
from csm.ledger import record_batch
from csm.passes.attempts import BatchContext
from csm.passes.context import PassRun
from csm.passes.leases import holder

if TYPE_CHECKING:
    from csm.pooled import Connection


async def record(
    run: PassRun,
    connection: Connection,
    context: BatchContext,
    cursor: int,
    *,
    next_inflight: bool = False,
) -> None:
    """The batch's rows, the cursor, what the results mean for every campaign (final
    outcomes, STOP replies, hard bounces) and the leases' release: one transaction.

    `next_inflight`: the next batch is being worked meanwhile; its in-flight mark and
    its leases stay. The cursor's row is updated last: a mark of the next batch waits
    on its lock only for the commit. A batch whose range was closed meanwhile raises
    `StaleBatch` (csm.ledger) and writes nothing.
    """
    plan = context.plan
    async with connection.transaction():
        if context.gate is not None:
            final_codes = plan.final_codes
            await record_consequences(
                connection,
                campaign_id=run.params.campaign_id,
                final_codes=final_codes,
                reached=[
                    (row.contact_id, row.result, row.attempted_at)
                    for row in context.rows
                    if row.result in final_codes
                ],
                opted_out=context.opted_out,
                bounced=context.bounced,
            )
            await release(connection, holder(plan.key), context.leased)
        await record_batch(
            connection,
            plan.key,
            context.rows,
            cursor,
            start=context.start,
            keep_later_inflight=next_inflight,
        )
    if (counted := metrics.current()) is not None:
        counted.recorded(context.rows)  # committed: count them once
    activity.heartbeat(cursor)


def count(run: PassRun, result: str, reason: str | None, n: int) -> None:
    """Count `n` committed ledger rows written outside a batch (settled or closed)."""
    if (counted := metrics.current()) is not None:
        counted.written(run.params.definition.channel.value, result, reason, n)
