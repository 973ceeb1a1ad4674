"""Starting a sub-campaign: register it, then start its workflow (scripts and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignError, SubCampaignRef, register_sub_campaign


@dataclass(frozen=True)
class Launched:
    sub_campaign: SubCampaignRef
    handle: WorkflowHandle


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


async def _start(client: Client, ref: SubCampaignRef, task_queue: str) -> WorkflowHandle:
    from workflows.subcampaign import SubCampaignInput, SubCampaignWorkflow

    return await client.start_workflow(
        SubCampaignWorkflow.run,
        SubCampaignInput(
            sub_campaign_id=ref.id,
            campaign_id=ref.campaign_id,
            list_id=ref.list_id,
            campaign=ref.campaign,
            sub_campaign=ref.name,
        ),
        id=ref.workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"sub-campaign {ref.name} of campaign {ref.campaign}",
        static_details=f"sub-campaign id {ref.id}, campaign id {ref.campaign_id}, "
        f"list id {ref.list_id}",
    )
