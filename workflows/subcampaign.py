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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.passes import PassActivities, PassInput
    from activities.planning import PlanInput, PlanningActivities
    from csm.amendments import (
        Amendment,
        AmendmentRecord,
        AmendmentRejected,
        apply_amendment,
        describe,
        parse_amendment,
    )
    from csm.plan import (  # PlanView: the `plan` query's answer, importable without us
        PLAN_QUERY,
        DayPlan,
        PassCounts,
        PassStatus,
        PlannedPass,
        PlanView,
        WaitNote,
        campaign_clock,
        window_span,
    )
    from csm.states import state_key

CAMPAIGN = SearchAttributeKey.for_keyword("CsmCampaign")
SUB_CAMPAIGN = SearchAttributeKey.for_keyword("CsmSubCampaign")
DAY = SearchAttributeKey.for_keyword("CsmDay")
STATE = state_key()

#: A pass retried after a crashed worker or a database outage resumes at its cursor, so
#: retrying often costs one cheap start; 10 s at most keeps a pass from idling long after
#: the fault is gone (measured: 10 worker kills in a row stalled a pass ~3 min at 30 s).
PASS_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)

#: What the amendment log says of a message that arrived before the day's plan existed.
EARLY = "received before the day's plan"
HELD = "held until the day's plan was ready"

#: Lifecycle action → (the states it applies in, the state it leads to).
LIFECYCLE: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("running", "paused"), "stopped"),
}


@dataclass
class SubCampaignInput:
    """The one input of the workflow; fields may be added with defaults, never removed."""

    sub_campaign_id: int
    campaign_id: int
    list_id: int
    campaign: str
    sub_campaign: str
    day: date | None = None  # None: the campaign day it is when the run starts
    paused: bool = False  # carried across days
    previous_selection: tuple[date, int] | None = None
    days_run: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # result code → attempts, all days


@dataclass
class SubCampaignSummary:
    sub_campaign_id: int
    state: str  # completed | stopped
    days_run: int
    totals: dict[str, int]


@workflow.defn(name="SubCampaign")
class SubCampaignWorkflow:
    @workflow.init
    def __init__(self, params: SubCampaignInput) -> None:
        self.params = params
        self.state = "paused" if params.paused else "running"
        self.plan: DayPlan | None = None
        self.groups: dict[str, list[str]] = {}
        self.final_groups: dict[str, str] = {}
        self.defined: list[PlannedPass] = []
        self.passes: list[PlannedPass] = []
        #: Applied amendments still in force, each with its entry in the log.
        self.active: list[tuple[AmendmentRecord, Amendment]] = []
        self.log: list[AmendmentRecord] = []
        #: Amendments that arrived before the day's plan existed: each has its `pending`
        #: entry in the log and is applied (or rejected) in order of arrival once it does.
        self.held: list[tuple[AmendmentRecord, Amendment]] = []
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

        totals = dict(params.totals)
        for planned_pass in self.passes:
            for code, count in (planned_pass.counts.results if planned_pass.counts else {}).items():
                totals[code] = totals.get(code, 0) + count
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
        start_at = self.plan.day_starts_at
        waits_for = "the campaign day"
        span = window_span(current.definition.window, self.plan)
        if span is not None and span[0] > start_at:
            start_at, waits_for = span[0], "its window"
        if current.definition.after is not None and self.last_pass_ended is not None:
            after_at = self.last_pass_ended + current.definition.after
            if after_at > start_at:
                start_at, waits_for = after_at, "its `after` delay"
        closes_at = span[1] if span is not None else self.plan.day_ends_at
        if current.status is PassStatus.PAUSED:
            return True  # it started already: resume it from its cursor
        if start_at >= closes_at or now >= closes_at:
            current.status = PassStatus.SKIPPED
            current.note = "its window closed before it could start"
            self._publish()
            return False
        if now < start_at:
            current.status = PassStatus.WAITING
            starts = campaign_clock(start_at, self.plan)
            current.note = f"waiting for {waits_for}: starts at {starts}"
            self._publish()
            await self._wait(start_at, f"pass {current.number} opens")
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
        deadlines = [a.until for _, a in self.active if a.until is not None]
        if until is not None:
            deadlines.append(until)
        timeout = None
        if deadlines:
            timeout = max((min(deadlines) - workflow.now()).total_seconds(), 0.001)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.wakeups != seen, timeout=timeout, timeout_summary=summary
            )

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

    # ---- amendments ----------------------------------------------------------
    def _amended(self, amendment: Amendment) -> list[PlannedPass]:
        assert self.plan is not None
        return apply_amendment(
            self.plan, self.passes, amendment, now=workflow.now(), groups=self.groups
        )

    def _record(self, amendment: Amendment, outcome: str, message: str = "") -> AmendmentRecord:
        return self._log_entry(
            [describe(op) for op in amendment.operations],
            outcome,
            message,
            author=amendment.author,
            reason=amendment.reason,
            until=amendment.until,
        )

    def _log_entry(
        self,
        operations: list[str],
        outcome: str,
        message: str,
        *,
        author: str = "unknown",
        reason: str = "",
        until: datetime | None = None,
    ) -> AmendmentRecord:
        """A new entry in the amendment log (what `plan` shows the manager)."""
        record = AmendmentRecord(
            number=len(self.log) + 1,
            author=author,
            reason=reason,
            received_at=workflow.now(),
            until=until,
            operations=operations,
            outcome=outcome,  # type: ignore[arg-type]
            message=message,
        )
        self.log.append(record)
        return record

    def _apply(self, amendment: Amendment) -> None:
        self.passes = self._amended(amendment)
        self.active.append((self._record(amendment, "applied"), amendment))
        self.wakeups += 1
        self._publish()

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

    def _hold(self, amendment: Amendment) -> AmendmentRecord:
        """Keep an amendment that arrived before the day's plan, to apply once it exists."""
        record = self._record(amendment, "pending", HELD)
        self.held.append((record, amendment))
        return record

    def _settle_held(self) -> None:
        """Apply (or reject, with the reason) the held amendments, in order of arrival."""
        held, self.held = self.held, []
        for record, amendment in held:
            refusal = self._refusal()
            try:
                if refusal is not None:
                    raise AmendmentRejected(refusal)
                self.passes = self._amended(amendment)
            except AmendmentRejected as err:
                record.outcome, record.message = "rejected", f"{HELD}, then: {err}"
                continue
            record.outcome, record.message = "applied", HELD
            self.active.append((record, amendment))
            self.wakeups += 1
            self._publish()

    def _expire_amendments(self) -> None:
        """After an amendment's `until`, the defined plan applies again to passes not started."""
        now = workflow.now()
        if self.plan is None or not any(
            a.until is not None and a.until <= now for _, a in self.active
        ):
            return
        in_force = []
        for record, amendment in self.active:
            if amendment.until is not None and amendment.until <= now:
                record.outcome = "expired"
            else:
                in_force.append((record, amendment))
        self.active = in_force
        started = {
            p.number: p
            for p in self.passes
            if p.status.started or (p.status.final and p.note != "skipped by amendment")
        }
        rebuilt = [started.get(p.number, p.model_copy(deep=True)) for p in self.defined]
        rebuilt += [p for p in self.passes if p.added and p.number in started]
        for _, amendment in self.active:
            try:
                rebuilt = apply_amendment(
                    self.plan, rebuilt, amendment, now=now, groups=self.groups
                )
            except AmendmentRejected as err:
                self._record(amendment, "rejected", f"no longer applies: {err}")
        self.passes = rebuilt
        self._publish()

    @workflow.signal(name="amend")
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
            self._log_entry([], "rejected", str(err))
            return
        refusal = self._refusal()
        if refusal is not None:
            self._record(amendment, "rejected", refusal)
            return
        if self.plan is None:
            self._hold(amendment)
            return
        try:
            self._apply(amendment)
        except AmendmentRejected as err:
            self._record(amendment, "rejected", str(err))

    @workflow.update(name="amend")
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
        record = self._hold(amendment)
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
        allowed, target = LIFECYCLE[action]
        applies = self.state in allowed
        if self.plan is None:
            if applies:
                self._log_entry([action], "applied", f"{EARLY}; the sub-campaign is now {target}")
            else:
                nothing = f"{EARLY}; nothing to do: the sub-campaign is {self.state}"
                self._log_entry([action], "rejected", nothing)
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

    @workflow.update(name="lifecycle")
    def lifecycle(self, action: str) -> str:
        self._lifecycle(action)
        return self.state

    @lifecycle.validator
    def _validate_lifecycle(self, action: str) -> None:
        if action not in LIFECYCLE:
            raise ApplicationError(f"unknown action {action!r}: pause, resume or stop")
        if self.state == "stopped" or self.state == "completed":
            raise ApplicationError(
                f"the sub-campaign is {self.state}; it cannot {action} (stop is final)"
            )
        if action == "resume" and self.state != "paused":
            raise ApplicationError(f"the sub-campaign is {self.state}, not paused")
        if action == "pause" and self.state != "running":
            raise ApplicationError(f"the sub-campaign is {self.state}, not running")

    # ---- queries and what ops see ---------------------------------------------
    @workflow.query(name=PLAN_QUERY)
    def plan_query(self) -> PlanView:
        return PlanView(
            sub_campaign=self.params.sub_campaign,
            day=self.plan.day if self.plan else None,
            state=self.state,
            strategy_version=self.plan.strategy_version if self.plan else None,
            passes=self.passes,
            amendments=self.log,
        )

    @workflow.query(name="progress")
    def progress(self) -> dict[str, int]:
        counts: dict[str, int] = {"passes": len(self.passes)}
        for status in PassStatus:
            counts[f"passes_{status.value}"] = sum(1 for p in self.passes if p.status is status)
        for planned in self.passes:
            if planned.counts:
                for name in ("selected", "attempted", "skipped", "unknown"):
                    counts[name] = counts.get(name, 0) + getattr(planned.counts, name)
        return counts

    @workflow.signal(name="pass_note")
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
        day = self.plan.day.isoformat() if self.plan else ""
        lines = [
            f"**{self.params.sub_campaign}** · {day} · {self.state}",
            "",
            "| # | pass | channel | status | selected | attempted | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in self.passes:
            c = p.counts or PassCounts()
            lines.append(
                f"| {p.number} | {p.definition.name} | {p.definition.channel.value} | "
                f"{p.status.value}{' (amended)' if p.amended else ''} | "
                f"{c.selected} | {c.attempted} | {p.note.replace('|', '/')} |"
            )
        workflow.set_current_details("\n".join(lines))
