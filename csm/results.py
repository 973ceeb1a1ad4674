"""Real-time results: a sub-campaign's day plan with live per-pass counts from the ledger.

The workflow knows the plan (which passes, their status, the amendment log) but
learns a pass's counts only when the pass activity returns. Managers want to
watch a pass while it runs, so the counts here come straight from the attempt
ledger (`csm.ledger.count_pass`), which is exact at any moment: every batch's
rows are committed together with the pass's cursor. The workflow is asked only
for what it alone knows. Everything here is ids, names, codes and counts.

Every read takes a `Db` (csm.lookups): an engine, or the one plain asyncpg
connection `csm status` opens, so the status path never loads SQLAlchemy, and the
plan's types come from csm.plan, not from the workflow module (issue 13).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from csm.ledger import PassKey, count_pass
from csm.lookups import Db, SubCampaignRef, campaign_timezone, reading
from csm.plan import PLAN_QUERY, PassCounts, PassStatus, PlannedPass, PlanView

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

#: How long a query may wait for a worker before we say none is answering.
QUERY_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class PassResult:
    """One pass of today's plan with its counts so far (zeros before it starts)."""

    number: int
    name: str
    channel: str
    status: str
    amended: bool
    added: bool
    note: str
    counts: PassCounts
    utilisation: float | None = None  # agents' busy share while the pass ran (agent passes)
    agent_group: str | None = None  # who takes its live answers: dialer and recovery passes
    in_flight: int = 0  # attempts placed with a carrier whose final status has not come yet

    @property
    def contact_rate(self) -> float | None:
        """Contacts a person answered (or who replied) per contact attempted."""
        if not self.counts.attempted:
            return None
        results = self.counts.results
        reached = sum(results.get(code, 0) for code in LIVE_RESULTS)
        return reached / self.counts.attempted

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned calls per live answer that needed an agent (the telemarketing measure).

        None for a pass without agents: nobody could abandon its calls, and a rate of
        0.0% there would read as a measure met.
        """
        if self.agent_group is None:
            return None
        abandoned = self.counts.results.get("abandoned", 0)
        live = abandoned + self.counts.results.get("agent_connected", 0)
        return abandoned / live if live else None

    @property
    def remaining(self) -> int:
        """Selected contacts that have neither a result nor a skip reason yet."""
        return max(self.counts.selected - self.counts.attempted - self.counts.skipped, 0)

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "channel": self.channel,
            "status": self.status,
            "amended": self.amended,
            "added": self.added,
            "note": self.note,
            "agent_group": self.agent_group,
            "selected": self.counts.selected,
            "attempted": self.counts.attempted,
            # Contacts the pass skipped without trying any device (with `attempted` and
            # `remaining` it adds up to `selected`) ...
            "skipped_contacts": self.counts.skipped,
            "remaining": self.remaining,
            "in_flight": self.in_flight,
            "unknown": self.counts.unknown,
            "results": dict(sorted(self.counts.results.items())),
            # ... while a skip row is written per contact, device and try skipped, so a
            # contact tried on one device and skipped on the next counts here too.
            "skips_by_reason": dict(sorted(self.counts.skip_reasons.items())),
            "rates": {
                "contact": _rounded(self.contact_rate),
                "abandon": _rounded(self.abandon_rate),
                "agent_utilisation": _rounded(self.utilisation),
            },
        }


#: Results that mean a person answered: the contact rate's numerator.
LIVE_RESULTS = ("delivered_person", "agent_connected", "abandoned", "success")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


async def agent_utilisation(
    db: Db, sub_campaign_id: int, day: date, pass_number: int, group: str
) -> float | None:
    """The share of the group's agent time the pass's calls took, from its first attempt to
    its last record (or now, while it runs). None before it starts or without agents."""
    async with reading(db) as connection:
        row = await connection.fetchrow(
            """
            WITH span AS (
              SELECT min(started_at) AS began,
                     CASE WHEN bool_and(finished) THEN max(updated_at) ELSE now() END AS ended
              FROM pass_progress WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3)
            SELECT extract(epoch FROM span.ended - span.began) AS seconds,
              (SELECT count(*) FROM agents a JOIN agent_groups g ON g.id = a.group_id
                WHERE g.name = $4) AS agents,
              (SELECT coalesce(sum(extract(epoch FROM least(c.busy_until, span.ended)
                                              - c.started_at)), 0)
                 FROM agent_calls c WHERE c.sub_campaign_id = $1 AND c.day = $2
                   AND c.pass_number = $3) AS busy
            FROM span
            """,
            sub_campaign_id,
            day,
            pass_number,
            group,
        )
    if row is None or not row["seconds"] or not row["agents"]:
        return None
    return min(float(row["busy"]) / (float(row["seconds"]) * row["agents"]), 1.0)


@dataclass(frozen=True)
class SubCampaignStatus:
    """What `csm status` shows: the day's plan, live counts per pass, and the amendment log."""

    sub_campaign: str
    campaign: str
    workflow_id: str
    day: date | None
    state: str
    strategy_version: int | None
    passes: list[PassResult]
    amendments: list[dict[str, Any]] = field(default_factory=list)
    timezone: str = "UTC"  # the campaign's: how managers read times

    def as_json(self) -> dict[str, Any]:
        return {
            "sub_campaign": self.sub_campaign,
            "campaign": self.campaign,
            "workflow_id": self.workflow_id,
            "day": self.day.isoformat() if self.day else None,
            "state": self.state,
            "strategy_version": self.strategy_version,
            "timezone": self.timezone,
            "passes": [p.as_json() for p in self.passes],
            "amendments": self.amendments,
        }

    def totals(self) -> dict[str, int]:
        """Attempt rows by result code over all of today's passes."""
        total: dict[str, int] = {}
        for p in self.passes:
            for code, count in p.counts.results.items():
                total[code] = total.get(code, 0) + count
        return dict(sorted(total.items()))


async def ledger_counts(
    db: Db, sub_campaign_id: int, day: date, pass_numbers: Iterable[int]
) -> dict[int, PassCounts]:
    """Exact counts of each pass of (sub-campaign, day), read from the ledger now."""
    numbers = sorted(set(pass_numbers))
    if not numbers:
        return {}
    async with reading(db) as connection:
        return {
            number: await count_pass(connection, PassKey(sub_campaign_id, day, number))
            for number in numbers
        }


async def in_flight_counts(db: Db, sub_campaign_id: int, day: date) -> dict[int, int]:
    """Attempts placed with a carrier and not settled yet, per pass of (sub-campaign, day).

    A real carrier answers later (csm.providers.twilio): until the final status comes
    an attempt has no ledger row, only its placement (provider_attempts, keyed by the
    attempt key `sub-campaign-YYYYMMDD-pass-contact-device-try`)."""
    async with reading(db) as connection:
        rows = await connection.fetch(
            """
            SELECT split_part(attempt_key, '-', 3)::int AS pass_number, count(*) AS n
            FROM provider_attempts
            WHERE sub_campaign_id = $1 AND state <> 'settled' AND attempt_key LIKE $2
            GROUP BY 1
            """,
            sub_campaign_id,
            f"{sub_campaign_id}-{day:%Y%m%d}-%",
        )
    return {row["pass_number"]: row["n"] for row in rows}


def _counted(planned: PlannedPass) -> bool:
    """Passes whose counts live in the ledger: those that started (or ended after starting)."""
    return planned.status.started or planned.counts is not None


def _first(*candidates: PassCounts | None) -> PassCounts:
    return next((c for c in candidates if c is not None), PassCounts())


async def combine(db: Db, ref: SubCampaignRef, plan: PlanView) -> SubCampaignStatus:
    """The workflow's plan joined with live ledger counts for passes that started."""
    timezone = await campaign_timezone(db, ref.campaign_id)
    live: dict[int, PassCounts] = {}
    in_flight: dict[int, int] = {}
    if plan.day is not None:
        live = await ledger_counts(
            db, ref.id, plan.day, (p.number for p in plan.passes if _counted(p))
        )
        if any(p.status in (PassStatus.RUNNING, PassStatus.PAUSED) for p in plan.passes):
            in_flight = await in_flight_counts(db, ref.id, plan.day)
    passes = []
    for p in plan.passes:
        group = p.definition.agent_group
        utilisation = None
        if group is not None and plan.day is not None and _counted(p):
            utilisation = await agent_utilisation(db, ref.id, plan.day, p.number, group)
        passes.append(
            PassResult(
                number=p.number,
                name=p.definition.name,
                channel=p.definition.channel.value,
                status=p.status.value,
                amended=p.amended,
                added=p.added,
                note=p.note,
                counts=_first(live.get(p.number), p.counts),
                utilisation=utilisation,
                agent_group=group,
                in_flight=in_flight.get(p.number, 0),
            )
        )
    return SubCampaignStatus(
        sub_campaign=ref.name,
        campaign=ref.campaign,
        workflow_id=ref.workflow_id,
        day=plan.day,
        state=plan.state,
        strategy_version=plan.strategy_version,
        passes=passes,
        amendments=[record.model_dump(mode="json") for record in plan.amendments],
        timezone=timezone,
    )


async def query_plan(handle: WorkflowHandle) -> PlanView:
    """The workflow's `plan` query, bounded so a missing worker is an error, not a hang.

    Asked by name with its answer's type, so readers need not import the workflow module
    (and the activities and tables behind it)."""
    return await handle.query(PLAN_QUERY, result_type=PlanView, rpc_timeout=QUERY_TIMEOUT)


async def live_status(handle: WorkflowHandle, db: Db, ref: SubCampaignRef) -> SubCampaignStatus:
    """Query the plan and count the ledger: one refresh of `csm status`."""
    return await combine(db, ref, await query_plan(handle))
