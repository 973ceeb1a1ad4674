"""How the sub-campaign workflow runs one pass: its activity, or its shards at once.

A pass runs as a heartbeating activity retried from its cursor. A pause or stop
cancels it and waits for the batch in hand to be recorded; paused, the pass resumes
later from its cursor; stopped, one more activity closes the contacts it did not
reach. Mixed into SubCampaignWorkflow, whose state (plan, params, state, ...) it reads.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.passes import PassActivities, PassInput
    from csm.plan import DayPlan, PassCounts, PassStatus, PlannedPass
    from csm.subcampaign_types import SubCampaignInput

#: A pass retried after a crashed worker or a database outage resumes at its cursor, so
#: retrying often costs one cheap start; 10 s at most keeps a pass from idling long after
#: the fault is gone (measured: 10 worker kills in a row stalled a pass ~3 min at 30 s).
PASS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)


class PassRunning:
    """The pass-running half of SubCampaignWorkflow (no handlers here: only its state)."""

    params: SubCampaignInput
    state: str
    plan: DayPlan | None
    groups: dict[str, list[str]]
    final_groups: dict[str, str]
    previous_selection: tuple[date, int] | None
    last_pass_ended: datetime | None

    def _publish(self) -> None:
        raise NotImplementedError

    async def _run_pass(self, current: PlannedPass) -> None:
        assert self.plan is not None
        current.status = PassStatus.RUNNING
        current.note = ""  # it works now; its activity says when it waits
        self._publish()
        definition = current.definition
        if definition.pacing.shards > 1 and not await self._run_shards(current):
            return
        handle = self._start_pass(
            current, f"pass {current.number} · {definition.channel.value} · {definition.name}"
        )
        await workflow.wait_condition(lambda: handle.done() or self.state != "running")
        if not handle.done():
            handle.cancel()
        try:
            current.counts = await handle
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                raise
            await self._end_interrupted(current)
            return
        current.status = PassStatus.DONE
        self.last_pass_ended = workflow.now()
        self.previous_selection = (self.plan.day, current.number)
        self._publish()

    async def _run_shards(self, current: PlannedPass) -> bool:
        """Round 0 of a sharded pass: its shards as activities at once, which the task
        queue's workers share. True when every shard is through (the pass's own activity
        then works the retry rounds and counts); False when a pause or stop cancelled them.

        A pause or stop cancels every shard still running, and each records the batch in
        hand before it ends; a stop then closes the pass as an unsharded one would.
        """
        definition = current.definition
        shards = definition.pacing.shards
        handles = [
            self._start_pass(
                current,
                f"pass {current.number} · shard {shard + 1} of {shards} · "
                f"{definition.channel.value} · {definition.name}",
                shard=shard,
            )
            for shard in range(shards)
        ]
        await workflow.wait_condition(
            lambda: all(h.done() for h in handles) or self.state != "running"
        )
        for handle in handles:
            if not handle.done():
                handle.cancel()
        cancelled = False
        for outcome in await asyncio.gather(*handles, return_exceptions=True):
            if isinstance(outcome, ActivityError) and isinstance(outcome.cause, CancelledError):
                cancelled = True
            elif isinstance(outcome, BaseException):
                raise outcome
        if not cancelled:
            return True
        await self._end_interrupted(current)
        return False

    def _start_pass(
        self, current: PlannedPass, summary: str, shard: int | None = None
    ) -> workflow.ActivityHandle[PassCounts]:
        """The pass's activity (or one shard of it): heartbeating, retried from its cursor,
        and on cancellation waited for, so the batch in hand is recorded first."""
        return workflow.start_activity_method(
            PassActivities.run_pass,
            self._pass_input(current, shard=shard),
            start_to_close_timeout=timedelta(hours=24),
            heartbeat_timeout=timedelta(seconds=10),
            retry_policy=PASS_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )

    async def _end_interrupted(self, current: PlannedPass) -> None:
        """After a pause or stop cancelled the pass: paused, it resumes later from its cursor;
        stopped, the contacts it did not reach are closed with the skip reason `stopped`."""
        if self.state == "paused":
            current.status = PassStatus.PAUSED
            self._publish()
            return
        current.counts = await workflow.execute_activity_method(
            PassActivities.run_pass,
            self._pass_input(current, close_reason="stopped"),
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=PASS_RETRY,
            summary=f"pass {current.number} · close after stop",
        )
        current.status = PassStatus.STOPPED
        self._publish()

    def _pass_input(
        self, current: PlannedPass, close_reason: str | None = None, shard: int | None = None
    ) -> PassInput:
        assert self.plan is not None
        return PassInput(
            sub_campaign_id=self.params.sub_campaign_id,
            campaign_id=self.params.campaign_id,
            list_id=self.params.list_id,
            day=self.plan.day,
            pass_number=current.number,
            definition=current.definition,
            response_groups=self.groups,
            final_groups=self.final_groups,
            campaign_timezone=self.plan.campaign_timezone,
            previous_selection=self.previous_selection,
            close_reason=close_reason,
            shard=shard,
            shards=current.definition.pacing.shards,
        )
