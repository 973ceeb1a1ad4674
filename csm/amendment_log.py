"""A sub-campaign day's amendment log, and the amendments in force.

The workflow keeps one per run: every amendment (and every pause, resume or stop
that came before the day's plan) gets an entry saying what became of it; the
applied ones stay in force until their `until`, and the ones that came before the
day's plan wait here until it exists. Pure and deterministic: the workflow hands in
`now` (its `workflow.now()`), so replaying a history builds the same log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from csm.amendments import Amendment, AmendmentRejected, apply_amendment, describe
from csm.plan import AmendmentRecord, DayPlan, PlannedPass

#: What the log says of a message that arrived before the day's plan existed.
EARLY = "received before the day's plan"
HELD = "held until the day's plan was ready"

#: An amendment's entry in the log, with the amendment itself.
Logged = tuple[AmendmentRecord, Amendment]


class AmendmentLog:
    """The entries (what the `plan` query shows), the amendments in force, the held ones."""

    def __init__(self) -> None:
        self.entries: list[AmendmentRecord] = []
        #: Applied amendments still in force, each with its entry.
        self.active: list[Logged] = []
        #: Amendments that arrived before the day's plan existed: each has its `pending`
        #: entry and is applied (or rejected) in order of arrival once the plan exists.
        self.held: list[Logged] = []

    def entry(
        self,
        operations: list[str],
        outcome: str,
        message: str,
        *,
        at: datetime,
        author: str = "unknown",
        reason: str = "",
        until: datetime | None = None,
    ) -> AmendmentRecord:
        """A new entry, numbered in order of arrival."""
        record = AmendmentRecord(
            number=len(self.entries) + 1,
            author=author,
            reason=reason,
            received_at=at,
            until=until,
            operations=operations,
            outcome=outcome,  # type: ignore[arg-type]
            message=message,
        )
        self.entries.append(record)
        return record

    def record(
        self, amendment: Amendment, outcome: str, message: str = "", *, at: datetime
    ) -> AmendmentRecord:
        """The entry of an amendment: its operations in words, its author, reason and end."""
        return self.entry(
            [describe(op) for op in amendment.operations],
            outcome,
            message,
            at=at,
            author=amendment.author,
            reason=amendment.reason,
            until=amendment.until,
        )

    def applied(self, amendment: Amendment, *, at: datetime) -> AmendmentRecord:
        """Log an amendment that applied: it stays in force until its `until`."""
        record = self.record(amendment, "applied", at=at)
        self.active.append((record, amendment))
        return record

    def hold(self, amendment: Amendment, *, at: datetime) -> AmendmentRecord:
        """Keep an amendment that arrived before the day's plan, to apply once it exists."""
        record = self.record(amendment, "pending", HELD, at=at)
        self.held.append((record, amendment))
        return record

    def settle_held(
        self, apply: Callable[[Amendment], object], refusal: Callable[[], str | None]
    ) -> None:
        """Apply (or reject, with the reason) the held amendments, in order of arrival.

        `apply` applies one to the plan or raises AmendmentRejected; `refusal` says why
        none can apply now (the sub-campaign stopped meanwhile), or None.
        """
        held, self.held = self.held, []
        for record, amendment in held:
            reason = refusal()
            try:
                if reason is not None:
                    raise AmendmentRejected(reason)
                apply(amendment)
            except AmendmentRejected as err:
                record.outcome, record.message = "rejected", f"{HELD}, then: {err}"
                continue
            record.outcome, record.message = "applied", HELD
            self.active.append((record, amendment))

    def deadlines(self) -> list[datetime]:
        """When amendments in force end: the workflow wakes then to restore the plan."""
        return [a.until for _, a in self.active if a.until is not None]

    def expire(self, now: datetime) -> bool:
        """Mark the amendments whose `until` has come `expired`; True when any did."""
        if not any(a.until is not None and a.until <= now for _, a in self.active):
            return False
        in_force = []
        for record, amendment in self.active:
            if amendment.until is not None and amendment.until <= now:
                record.outcome = "expired"
            else:
                in_force.append((record, amendment))
        self.active = in_force
        return True

    def reapply(
        self,
        plan: DayPlan,
        defined: list[PlannedPass],
        passes: list[PlannedPass],
        *,
        now: datetime,
        groups: dict[str, list[str]],
    ) -> list[PlannedPass]:
        """Today's passes after an expiry: the defined plan for passes not started, with the
        amendments still in force applied again (one that no longer applies is logged)."""
        started = {
            p.number: p
            for p in passes
            if p.status.started or (p.status.final and p.note != "skipped by amendment")
        }
        rebuilt = [started.get(p.number, p.model_copy(deep=True)) for p in defined]
        rebuilt += [p for p in passes if p.added and p.number in started]
        for _, amendment in self.active:
            try:
                rebuilt = apply_amendment(plan, rebuilt, amendment, now=now, groups=groups)
            except AmendmentRejected as err:
                self.record(amendment, "rejected", f"no longer applies: {err}", at=now)
        return rebuilt
