"""SubCampaignWorkflow: one sub-campaign, one durable workflow, one run per campaign day.

A run plans its day (activity), then works today's passes in order: it waits
for a pass's window or `after` delay on a timer that amendments and lifecycle
messages wake, runs the pass as an activity, and at the end of the day
continues-as-new into the next day with the defined strategy. Managers amend
today's passes that have not started (signal or validated update), pause,
resume and stop. A message may come at any moment, even before the day's plan
exists or after today's passes are over: no handler raises anything but the
ApplicationError meant for the caller, and the amendment log says what became of
each. Everything here is ids, names, codes and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from workflows.pass_running import PassRunning

with workflow.unsafe.imports_passed_through():
    from activities.planning import PlanInput, PlanningActivities
    from csm.amendment_log import EARLY, AmendmentLog
    from csm.amendments import Amendment, AmendmentRejected, apply_amendment, parse_amendment
    from csm.day_details import current_details, day_totals, progress_counts
    from csm.plan import (  # PlanView: the `plan` query's answer, importable without us
        PLAN_QUERY,
        DayPlan,
        PassStatus,
        PlannedPass,
        PlanView,
        WaitNote,
        campaign_clock,
        pass_opening,
    )
    from csm.states import CAMPAIGN_ATTRIBUTE, DAY_ATTRIBUTE, SUB_CAMPAIGN_ATTRIBUTE, state_key
    from csm.subcampaign_types import (
        AMEND,
        LIFECYCLE,
        LIFECYCLE_MOVES,
        PASS_NOTE,
        PROGRESS_QUERY,
        WORKFLOW_TYPE,
        SubCampaignInput,
        SubCampaignSummary,
        lifecycle_refusal,
    )

CAMPAIGN = SearchAttributeKey.for_keyword(CAMPAIGN_ATTRIBUTE)
SUB_CAMPAIGN = SearchAttributeKey.for_keyword(SUB_CAMPAIGN_ATTRIBUTE)
DAY = SearchAttributeKey.for_keyword(DAY_ATTRIBUTE)
STATE = state_key()


@workflow.defn(name=WORKFLOW_TYPE)
class SubCampaignWorkflow(PassRunning):
    @workflow.init
    def __init__(self, params: SubCampaignInput) -> None:
        self.params = params
        self.state = "paused" if params.paused else "running"
        self.plan: DayPlan | None = None
        self.groups: dict[str, list[str]] = {}
        self.final_groups: dict[str, str] = {}
        self.defined: list[PlannedPass] = []
        self.passes: list[PlannedPass] = []
        self.log = AmendmentLog()
        self.day_over = False  # every pass of today is final: there is nothing left to amend
        self.wakeups = 0  # bumped by every message, so waiting timers re-evaluate
        self.previous_selection = params.previous_selection
        self.last_pass_ended: datetime | None = None

    # ---- run -----------------------------------------------------------------
    @workflow.run
    async def run(self, params: SubCampaignInput) -> SubCampaignSummary:
        planned = await workflow.execute_activity_method(
            PlanningActivities.plan_day,
            PlanInput(params.sub_campaign_id, workflow.now(), params.day),
            start_to_close_timeout=timedelta(minutes=2),
            summary="plan the day",
        )
        self.plan, self.groups = planned.plan, planned.response_groups
        self.final_groups = planned.final_groups
        self.defined = [p.model_copy(deep=True) for p in self.plan.passes]
        self.passes = [p.model_copy(deep=True) for p in self.plan.passes]
        self._publish()
        self._settle_held()

        while self.state != "stopped":
            self._expire_amendments()
            current = next((p for p in self.passes if not p.status.final), None)
            for other in self.passes:  # an amendment may have put another pass first
                if other.status is PassStatus.WAITING and other is not current:
                    other.status = PassStatus.PENDING
                    other.note = ""
            if current is None:
                break
            if self.state == "paused":
                if not current.note.startswith("paused"):
                    current.note = f"paused since {campaign_clock(workflow.now(), self.plan)}"
                    self._show()
                await self._wait(None, "paused")
                continue
            if not await self._ready(current):
                continue
            alongside = self._alongside(current)
            if alongside:  # a recovery strategy: the passes run at the same time
                await asyncio.gather(self._run_pass(current), *map(self._run_pass, alongside))
            else:
                await self._run_pass(current)
        self.day_over = True

        totals = day_totals(params.totals, self.passes)
        if self.state == "stopped" or not self.plan.list_has_contacts or self.plan.next_day is None:
            return await self._finish("stopped" if self.state == "stopped" else "completed", totals)
        # The day's work is done: sleep to the next campaign day, then start it afresh.
        assert self.plan.next_day_starts_at is not None
        self._publish()
        while self.state != "stopped" and workflow.now() < self.plan.next_day_starts_at:
            await self._wait(self.plan.next_day_starts_at, f"until {self.plan.next_day}")
        if self.state == "stopped":
            return await self._finish("stopped", totals)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            SubCampaignInput(
                sub_campaign_id=params.sub_campaign_id,
                campaign_id=params.campaign_id,
                list_id=params.list_id,
                campaign=params.campaign,
                sub_campaign=params.sub_campaign,
                day=self.plan.next_day,
                paused=self.state == "paused",
                previous_selection=self.previous_selection,
                days_run=params.days_run + 1,
                totals=totals,
            )
        )

    async def _finish(self, state: str, totals: dict[str, int]) -> SubCampaignSummary:
        self.state = state
        for planned in self.passes:
            if planned.status is PassStatus.WAITING:
                planned.status = PassStatus.PENDING
            if not planned.status.final:
                planned.note = ""  # it waits for nothing any more
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SubCampaignSummary(
            sub_campaign_id=self.params.sub_campaign_id,
            state=state,
            days_run=self.params.days_run + 1,
            totals=totals,
        )

    async def _ready(self, current: PlannedPass) -> bool:
        """True when `current` may start now; else it waits (or is skipped) and we re-plan."""
        assert self.plan is not None
        now = workflow.now()
        opening = pass_opening(current.definition, self.plan, self.last_pass_ended)
        if current.status is PassStatus.PAUSED:
            return True  # it started already: resume it from its cursor
        if opening.starts_at >= opening.closes_at or now >= opening.closes_at:
            current.status = PassStatus.SKIPPED
            current.note = "its window closed before it could start"
            self._publish()
            return False
        if now < opening.starts_at:
            current.status = PassStatus.WAITING
            starts = campaign_clock(opening.starts_at, self.plan)
            current.note = f"waiting for {opening.waits_for}: starts at {starts}"
            self._publish()
            await self._wait(opening.starts_at, f"pass {current.number} opens")
            return False
        return True

    def _alongside(self, current: PlannedPass) -> list[PlannedPass]:
        """The passes right after `current` that run alongside it (and are not done)."""
        following = self.passes[self.passes.index(current) + 1 :]
        together = []
        for other in following:
            if not other.definition.alongside or other.status.final:
                break
            together.append(other)
        return together

    async def _wait(self, until: datetime | None, summary: str) -> None:
        """Sleep until `until` (or forever), waking early on any message or amendment expiry."""
        seen = self.wakeups
        deadlines = self.log.deadlines()
        if until is not None:
            deadlines.append(until)
        timeout = None
        if deadlines:
            timeout = max((min(deadlines) - workflow.now()).total_seconds(), 0.001)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.wakeups != seen, timeout=timeout, timeout_summary=summary
            )

    # ---- amendments ----------------------------------------------------------
    def _amended(self, amendment: Amendment) -> list[PlannedPass]:
        assert self.plan is not None
        return apply_amendment(
            self.plan, self.passes, amendment, now=workflow.now(), groups=self.groups
        )

    def _replan(self, amendment: Amendment) -> None:
        """Today's passes with `amendment` applied (or AmendmentRejected, nothing changed);
        waiting timers wake to re-evaluate."""
        self.passes = self._amended(amendment)
        self.wakeups += 1
        self._publish()

    def _apply(self, amendment: Amendment) -> None:
        self._replan(amendment)
        self.log.applied(amendment, at=workflow.now())

    def _refusal(self) -> str | None:
        """Why no amendment can apply now, whatever it says; None when one may."""
        if self.state in ("stopped", "completed"):
            return f"the sub-campaign is {self.state}"
        if self.day_over:
            return (
                "today's passes are all over; an amendment changes only today's passes "
                "that have not started, and the next day runs the defined strategy"
            )
        return None

    def _settle_held(self) -> None:
        """Apply (or reject, with the reason) the held amendments, in order of arrival."""
        self.log.settle_held(self._replan, self._refusal)

    def _expire_amendments(self) -> None:
        """After an amendment's `until`, the defined plan applies again to passes not started."""
        now = workflow.now()
        if self.plan is None or not self.log.expire(now):
            return
        self.passes = self.log.reapply(
            self.plan, self.defined, self.passes, now=now, groups=self.groups
        )
        self._publish()

    @workflow.signal(name=AMEND)
    def amend_signal(self, payload: Any = None, *extra: Any) -> None:
        """Fire-and-forget amendment (what the Temporal UI sends); invalid ones are logged.

        Never raises: an exception here (a TypeError for a missing or extra input
        included) would fail the workflow task on every retry. One that arrives before
        the day's plan is held and applied once the plan exists.
        """
        try:
            if extra:
                inputs = 1 + len(extra)
                raise AmendmentRejected(f"malformed amendment: 1 input expected, got {inputs}")
            amendment = parse_amendment(payload)
        except AmendmentRejected as err:
            self.log.entry([], "rejected", str(err), at=workflow.now())
            return
        refusal = self._refusal()
        if refusal is not None:
            self.log.record(amendment, "rejected", refusal, at=workflow.now())
            return
        if self.plan is None:
            self.log.hold(amendment, at=workflow.now())
            return
        try:
            self._apply(amendment)
        except AmendmentRejected as err:
            self.log.record(amendment, "rejected", str(err), at=workflow.now())

    @workflow.update(name=AMEND)
    async def amend_update(self, payload: Any = None) -> PlanView:
        """Validated first (below), so only an amendment that applies gets here.

        The payload is taken raw and parsed by us, so a malformed one is refused with
        what is wrong rather than the SDK's "Failed decoding arguments". One that arrives
        before the day's plan waits for it, then applies or is refused with the reason.
        Only ApplicationError leaves this handler: anything else would wedge the workflow.
        """
        try:
            amendment = parse_amendment(payload)
            if self.plan is not None:
                self._apply(amendment)
                return self.plan_query()
        except AmendmentRejected as err:
            raise ApplicationError(str(err), type="AmendmentRejected") from None
        record = self.log.hold(amendment, at=workflow.now())
        await workflow.wait_condition(lambda: record.outcome != "pending")
        if record.outcome == "rejected":
            raise ApplicationError(record.message, type="AmendmentRejected")
        return self.plan_query()

    @amend_update.validator
    def _validate_amend(self, payload: Any = None) -> None:
        try:
            amendment = parse_amendment(payload)
        except AmendmentRejected as err:
            raise ApplicationError(str(err), type="AmendmentRejected") from None
        refusal = self._refusal()
        if refusal is not None:
            raise ApplicationError(f"{refusal}; it cannot be amended", type="AmendmentRejected")
        if self.plan is None:
            return  # held until the day's plan exists; the handler answers then
        try:
            self._amended(amendment)
        except AmendmentRejected as err:
            raise ApplicationError(str(err), type="AmendmentRejected") from None

    # ---- lifecycle -----------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        self.wakeups += 1
        self._publish()

    def _lifecycle(self, action: str) -> None:
        """Pause, resume or stop when the state allows it; else nothing changes.

        Before the day's plan exists the plan view has no pass to show the effect, so the
        amendment log says what became of the message (the run then plans the day and
        waits paused, or plans it and ends stopped).
        """
        allowed, target = LIFECYCLE_MOVES[action]
        applies = self.state in allowed
        if self.plan is None:
            if applies:
                done = f"{EARLY}; the sub-campaign is now {target}"
                self.log.entry([action], "applied", done, at=workflow.now())
            else:
                nothing = f"{EARLY}; nothing to do: the sub-campaign is {self.state}"
                self.log.entry([action], "rejected", nothing, at=workflow.now())
        if applies:
            self._set_state(target)

    # Inputs given to these signals (the Temporal UI allows them) are ignored: without
    # `*_ignored` the call would raise TypeError and fail the workflow task on every retry.
    @workflow.signal
    def pause(self, *_ignored: Any) -> None:
        self._lifecycle("pause")

    @workflow.signal
    def resume(self, *_ignored: Any) -> None:
        self._lifecycle("resume")

    @workflow.signal
    def stop(self, *_ignored: Any) -> None:
        self._lifecycle("stop")

    @workflow.update(name=LIFECYCLE)
    def lifecycle(self, action: str) -> str:
        self._lifecycle(action)
        return self.state

    @lifecycle.validator
    def _validate_lifecycle(self, action: str) -> None:
        refusal = lifecycle_refusal(action, self.state)
        if refusal is not None:
            raise ApplicationError(refusal)

    # ---- queries and what ops see ---------------------------------------------
    @workflow.query(name=PLAN_QUERY)
    def plan_query(self) -> PlanView:
        return PlanView(
            sub_campaign=self.params.sub_campaign,
            day=self.plan.day if self.plan else None,
            state=self.state,
            strategy_version=self.plan.strategy_version if self.plan else None,
            passes=self.passes,
            amendments=self.log.entries,
        )

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> dict[str, int]:
        return progress_counts(self.passes)

    @workflow.signal(name=PASS_NOTE)
    def pass_note(self, note: WaitNote) -> None:
        """A running pass's activity says why it waits (or "" once it works again)."""
        for planned in self.passes:
            if planned.number == note.pass_number and planned.status is PassStatus.RUNNING:
                planned.note = note.note
                self._show()

    def _publish(self) -> None:
        """Search attributes and the UI's current details: ids, codes and counts only."""
        day = self.plan.day.isoformat() if self.plan else ""
        workflow.upsert_search_attributes(
            [
                CAMPAIGN.value_set(self.params.campaign),
                SUB_CAMPAIGN.value_set(self.params.sub_campaign),
                DAY.value_set(day),
                STATE.value_set(self.state),
            ]
        )
        self._show()

    def _show(self) -> None:
        """The UI's current details: the day's passes with their counts and notes (no
        command, so a note may change without touching the history)."""
        day = self.plan.day if self.plan else None
        workflow.set_current_details(
            current_details(self.params.sub_campaign, day, self.state, self.passes)
        )
