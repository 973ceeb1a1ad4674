"""What a crash left in flight, and a round closed with a reason instead of worked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from csm.compliance.gate import release
from csm.ledger import PassKey, rewind_inflight, settle_inflight, skip_remaining
from csm.passes.context import PassRun
from csm.passes.leases import holder
from csm.passes.recording import count
from csm.vocabulary import UNKNOWN

if TYPE_CHECKING:
    from csm.pooled import Connection


async def settle(run: PassRun, connection: Connection, key: PassKey) -> None:
    """Close the batch a crash left in flight. A provider that answers a repeated attempt
    key from its record (no second call) lets the sweep simply work the batch again;
    otherwise its contacts without a row are recorded `unknown`, never resent.

    A pass with agents is worked again only when the provider also keeps the live
    answer's decision (a `BridgingProvider`, the Twilio adapter): a key decided before
    comes back DECIDED with its recorded result, so no second agent is taken, and a live
    answer still waiting for a decision (the worker died before `connect`) is decided
    once, by this run. With any other provider a repeated live answer would take a
    second agent for a call that is over: those passes settle `unknown`."""
    params, checks = run.params, run.tools.checks
    provider = run.tools.channels.for_channel(params.definition.channel)
    agents = params.definition.agent_group is not None  # a dialer pass always has some
    if getattr(provider, "idempotent", False) and (not agents or hasattr(provider, "connect")):
        if await rewind_inflight(connection, key):
            activity.logger.info(
                "pass %s try %s: the batch in flight at a crash is worked again; the"
                " provider answers attempts it already placed from its record",
                params.pass_number,
                key.round,
            )
        if checks:
            await release(connection, holder(key))
        return
    unknown = await settle_inflight(
        connection,
        key,
        campaign_id=params.campaign_id,
        channel=params.definition.channel.value,
        now=run.clock.now(),
    )
    count(run, UNKNOWN, None, unknown)
    if checks:
        await release(connection, holder(key))
    if unknown:
        activity.logger.warning(
            "pass %s try %s: %d attempts in flight at a crash recorded as unknown",
            params.pass_number,
            key.round,
            unknown,
        )


async def close(run: PassRun, connection: Connection, key: PassKey) -> None:
    """Skip the rest of the round with the pass's close reason: nothing is attempted."""
    params = run.params
    assert params.close_reason is not None
    skipped = await skip_remaining(
        connection,
        key,
        campaign_id=params.campaign_id,
        channel=params.definition.channel.value,
        reason=params.close_reason,
        now=run.clock.now(),
    )
    count(run, "skipped", params.close_reason, skipped)
