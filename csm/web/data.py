"""What the web pages show: sub-campaigns, their live status with funnels, and actions.

Everything here is a few small reads: sub-campaign rows, one visibility listing
for their states, the workflow's plan query, and the per-pass totals
(csm.ledger.count_pass) — never a scan of the ledger, so a page can stay open all
day on a 1,000,000-contact list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from csm import control
from csm.campaigns import campaign_today, strategy_in_force
from csm.database import driver_connection
from csm.results import combine
from csm.states import UNKNOWN_STATE, state_key, sub_campaign_state
from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignRef, find_sub_campaign

#: The funnel's response groups: at most this many, the rest as "other".
MAX_GROUPS = 6


@dataclass(frozen=True)
class SubCampaignRow:
    id: int
    name: str
    campaign: str
    list_name: str
    workflow_id: str
    state: str
    day: str
    selected: int
    handled: int

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


async def sub_campaign_rows(client: Client, engine: AsyncEngine) -> list[SubCampaignRow]:
    """Every sub-campaign, newest first, with its state and today's progress.

    Handled counts, per pass, at most the contacts the pass selected. The ledger refuses
    the batch that would hold a contact twice (`csm.ledger.StaleBatch`: settled `unknown`
    after a crash, then recorded by the attempt Temporal gave up on); the cap keeps the
    page honest should any other write ever count one twice.
    """
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            """
            SELECT s.id, s.name, c.name AS campaign, l.name AS list_name, s.workflow_id,
                   p.day, coalesce(p.selected, 0) AS selected, coalesce(p.handled, 0) AS handled
            FROM sub_campaigns s JOIN campaigns c ON c.id = s.campaign_id
            JOIN lists l ON l.id = s.list_id
            LEFT JOIN LATERAL (
              SELECT g.day, sum(g.selected) AS selected,
                     sum(least(g.selected, coalesce(r.attempted + r.skipped, 0))) AS handled
              FROM pass_progress g LEFT JOIN pass_reach r
                ON r.sub_campaign_id = g.sub_campaign_id AND r.day = g.day
               AND r.pass_number = g.pass_number
              WHERE g.sub_campaign_id = s.id AND g.round = 0
              GROUP BY g.day ORDER BY g.day DESC LIMIT 1) p ON true
            ORDER BY s.id DESC LIMIT 200
            """
        )
    states = await states_of(client, [row["workflow_id"] for row in rows])
    return [
        SubCampaignRow(
            id=row["id"],
            name=row["name"],
            campaign=row["campaign"],
            list_name=row["list_name"],
            workflow_id=row["workflow_id"],
            state=states.get(row["workflow_id"], UNKNOWN_STATE),
            day=row["day"].isoformat() if row["day"] else "",
            selected=int(row["selected"]),
            handled=int(row["handled"]),
        )
        for row in rows
    ]


async def states_of(client: Client, workflow_ids: list[str]) -> dict[str, str]:
    """Each workflow's state from one visibility listing (no worker, no describe per row).

    A sub-campaign has one run per day; runs that continued-as-new are left out, and
    of what remains (a run, or a finished one and a later start) the newest counts.
    Ids Temporal has no run for are missing: their state is unknown.
    """
    quoted = [f"'{w}'" for w in workflow_ids if "'" not in w and "\\" not in w]
    if not quoted:
        return {}
    query = f"WorkflowId IN ({', '.join(quoted)}) AND ExecutionStatus != 'ContinuedAsNew'"
    latest: dict[str, WorkflowExecution] = {}
    try:
        async for execution in client.list_workflows(query, page_size=max(len(quoted), 100)):
            kept = latest.get(execution.id)
            if kept is None or execution.start_time > kept.start_time:
                latest[execution.id] = execution
    except RPCError:  # Temporal unreachable: the rows still show, their states unknown
        return {}
    key = state_key()
    return {
        workflow_id: sub_campaign_state(e.status, e.typed_search_attributes.get(key))
        for workflow_id, e in latest.items()
    }


async def find(engine: AsyncEngine, reference: str) -> SubCampaignRef:
    """A sub-campaign by its id (the pages' URLs), workflow id or unique name."""
    if reference.isdigit():
        async with driver_connection(engine) as connection:
            workflow_id = await connection.fetchval(
                "SELECT workflow_id FROM sub_campaigns WHERE id = $1", int(reference)
            )
        if workflow_id is not None:
            reference = workflow_id
    return await find_sub_campaign(engine, reference)


async def strategy_of(
    engine: AsyncEngine, ref: SubCampaignRef, day: date | None
) -> StrategyDefinition:
    """The strategy the sub-campaign runs today: its own, or the campaign's in force."""
    async with driver_connection(engine) as connection:
        row = await connection.fetchrow(
            "SELECT s.strategy_override::text AS override, c.timezone FROM sub_campaigns s"
            " JOIN campaigns c ON c.id = s.campaign_id WHERE s.id = $1",
            ref.id,
        )
    if row["override"] not in (None, "null"):  # a JSON null is no override too
        return StrategyDefinition.model_validate_json(row["override"])
    return (
        await strategy_in_force(engine, ref.campaign_id, day or campaign_today(row["timezone"]))
    )[1]


async def live(client: Client, engine: AsyncEngine, ref: SubCampaignRef) -> dict[str, Any]:
    """One refresh: the plan, each pass's counts and funnel, actions, and the DB time it took."""
    plan = await control.read_plan(client, ref)
    began = time.perf_counter()
    status = await combine(engine, ref, plan)
    actions = await recent_actions(engine, ref.id)
    db_ms = (time.perf_counter() - began) * 1000
    groups = (await strategy_of(engine, ref, status.day)).groups()
    shown = status.as_json()
    for result, planned in zip(shown["passes"], status.passes, strict=True):
        result["funnel"] = funnel(planned.counts.results, planned.counts, groups)
    shown["actions"] = actions
    shown["db_ms"] = round(db_ms, 2)
    return shown


def funnel(results: dict[str, int], counts: Any, groups: dict[str, list[str]]) -> dict[str, Any]:
    """selected → attempted → by response group → by result code, for one pass card."""
    by_group: dict[str, int] = {}
    for name, codes in list(groups.items())[:MAX_GROUPS]:
        total = sum(results.get(code, 0) for code in codes)
        if total:
            by_group[name] = total
    return {
        "selected": counts.selected,
        "attempted": counts.attempted,
        "skipped": counts.skipped,
        "groups": by_group,
        "results": dict(sorted(results.items(), key=lambda item: -item[1])),
    }


async def record_action(
    engine: AsyncEngine, sub_campaign_id: int, actor: str, action: str, detail: str, outcome: str
) -> None:
    async with driver_connection(engine) as connection:
        await connection.execute(
            "INSERT INTO manager_actions (sub_campaign_id, actor, action, detail, outcome)"
            " VALUES ($1, $2, $3, $4, $5)",
            sub_campaign_id,
            actor[:100],
            action,
            detail[:2000],
            outcome[:2000],
        )


async def recent_actions(engine: AsyncEngine, sub_campaign_id: int) -> list[dict[str, Any]]:
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT actor, action, detail, outcome, at FROM manager_actions"
            " WHERE sub_campaign_id = $1 ORDER BY id DESC LIMIT 20",
            sub_campaign_id,
        )
    return [
        {
            "actor": row["actor"],
            "action": row["action"],
            "detail": row["detail"],
            "outcome": row["outcome"],
            "at": row["at"].isoformat(timespec="seconds"),
        }
        for row in rows
    ]
