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
    try:
        handle = await _start(client, ref, task_queue)
    except WorkflowAlreadyStartedError:
        raise SubCampaignError(
            f"sub-campaign {ref.name!r} of {ref.campaign!r} has already run and is closed "
            "(completed or stopped, which is final); start it under another --name"
        ) from None
    return Launched(ref, handle)


async def _start(
    client: Client, ref: SubCampaignRef, task_queue: str
) -> WorkflowHandle[Any, SubCampaignSummary]:
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

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
