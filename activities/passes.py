"""The pass activity: one sweep through the contacts a pass selects, exact across crashes.

A thin shell over the pass engine (`csm.passes`): it binds the worker's database engine,
channel providers and agent desk, and runs the pass. What a run does:

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

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from csm.agents import AgentDesk
from csm.channels import Channels
from csm.passes.context import Tools
from csm.passes.input import PassInput
from csm.passes.run import run_pass
from csm.plan import PassCounts

__all__ = ["PassActivities", "PassInput"]


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
        self.tools = Tools.of(engine, channels, checks=checks, desk=desk)

    @activity.defn(name="run_pass")
    async def run_pass(self, params: PassInput) -> PassCounts:
        """Run one pass (or one shard of it): see `csm.passes.run`."""
        return await run_pass(self.tools, params)
