"""Starting a sub-campaign: register it, then start its workflow (scripts, the CLI, tests).

The workflow is started by its registered name with its input type from the core
(csm.subcampaign_types), so starting one never imports the workflow module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csm.control.errors import ControlError, Refused
from csm.lookups import SubCampaignError, SubCampaignRef
from csm.states import STOPPED, state_key
from csm.subcampaign_types import WORKFLOW_TYPE, SubCampaignInput, SubCampaignSummary

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client, WorkflowHandle

    from csm.strategy.model import StrategyDefinition


#: Temporal's task priority keys run from 1 (first) to 5 (last); unset is 3.
TASK_PRIORITY_FIRST, TASK_PRIORITY_DEFAULT, TASK_PRIORITY_LAST = 1, 3, 5
#: A campaign priority this far from 0 takes the outermost key; closer, the one next to 3.
STRONG_PRIORITY = 10


def task_priority(campaign_priority: int) -> int:
    """The Temporal task priority key of a campaign's sub-campaigns.

    When a worker has no free slot (CSM_MAX_CONCURRENT_ACTIVITIES), its task queue's
    backlog is served by priority key first: a higher campaign priority gets the next
    slot. Campaign priorities are any integers (higher goes first) and keys are five
    bands (lower goes first), so they map by sign and size: 0 is Temporal's default 3,
    1..9 is 2, 10 and more is 1, -1..-9 is 4, -10 and less is 5.
    """
    if campaign_priority == 0:
        return TASK_PRIORITY_DEFAULT
    strong = abs(campaign_priority) >= STRONG_PRIORITY
    if campaign_priority > 0:
        return TASK_PRIORITY_FIRST if strong else TASK_PRIORITY_DEFAULT - 1
    return TASK_PRIORITY_LAST if strong else TASK_PRIORITY_DEFAULT + 1


@dataclass(frozen=True)
class Launched:
    sub_campaign: SubCampaignRef
    handle: WorkflowHandle[Any, SubCampaignSummary]


async def start_sub_campaign(
    client: Client,
    engine: AsyncEngine,
    *,
    campaign: str,
    list_name: str,
    task_queue: str,
    name: str | None = None,
    strategy: StrategyDefinition | None = None,
) -> Launched:
    """Register the sub-campaign and start (or find, if it runs already) its workflow.

    A sub-campaign runs once: after it completed or was stopped (stop is final), its
    workflow id cannot start again; run the list again under another name.
    """
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from csm.subcampaigns import register_sub_campaign  # SQLAlchemy: only when starting

    ref = await register_sub_campaign(
        engine, campaign=campaign, list_name=list_name, name=name, strategy=strategy
    )
    priority = await _campaign_priority(engine, ref.campaign_id)
    try:
        handle = await _start(client, ref, task_queue, task_priority(priority))
    except WorkflowAlreadyStartedError:
        raise SubCampaignError(
            f"sub-campaign {ref.name!r} of {ref.campaign!r} has already run and is closed "
            "(completed or stopped, which is final); start it under another --name"
        ) from None
    return Launched(ref, handle)


async def _campaign_priority(engine: AsyncEngine, campaign_id: int) -> int:
    from csm.lookups import driver_connection

    async with driver_connection(engine) as connection:
        query = "SELECT priority FROM campaigns WHERE id = $1"
        return await connection.fetchval(query, campaign_id)


async def _start(
    client: Client, ref: SubCampaignRef, task_queue: str, priority_key: int
) -> WorkflowHandle[Any, SubCampaignSummary]:
    """Start the workflow with its campaign's task priority: its activities (the day's plan,
    the passes) inherit it."""
    from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

    return await client.start_workflow(
        WORKFLOW_TYPE,
        SubCampaignInput(
            sub_campaign_id=ref.id,
            campaign_id=ref.campaign_id,
            list_id=ref.list_id,
            campaign=ref.campaign,
            sub_campaign=ref.name,
        ),
        id=ref.workflow_id,
        task_queue=task_queue,
        result_type=SubCampaignSummary,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"sub-campaign {ref.name} of campaign {ref.campaign}",
        static_details=f"sub-campaign id {ref.id}, campaign id {ref.campaign_id}, "
        f"list id {ref.list_id}",
        priority=Priority(priority_key=priority_key),
    )


async def refuse_if_stopped(client: Client, workflow_id: str) -> bool:
    """Stop is final: starting a stopped sub-campaign again would quietly resume it.

    Temporal would accept a new run under the same workflow id once the old one
    has closed, so the check is ours: the last run's `CsmState` says how it ended.
    Returns whether the workflow is running already (then a start just finds it).
    """
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False  # never started: go ahead
        raise ControlError(
            f"cannot look up workflow {workflow_id} on Temporal: {err.status.name}: {err.message}"
        ) from None
    if description.status == WorkflowExecutionStatus.RUNNING:
        return True
    if description.typed_search_attributes.get(state_key()) == STOPPED:
        raise Refused(
            f"sub-campaign workflow {workflow_id} was stopped, and stop is final; "
            "to work the list again, start a new sub-campaign with --name",
            reason="the sub-campaign was stopped, and stop is final",
        )
    return False
