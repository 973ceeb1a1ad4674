"""Starting a sub-campaign: register it, then start its workflow (scripts and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignRef, register_sub_campaign


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
    """Register the sub-campaign and start (or find, if it runs already) its workflow."""
    from workflows.subcampaign import SubCampaignInput, SubCampaignWorkflow

    ref = await register_sub_campaign(
        engine, campaign=campaign, list_name=list_name, name=name, strategy=strategy
    )
    handle = await client.start_workflow(
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
        static_summary=f"sub-campaign {ref.name} of campaign {ref.campaign}",
        static_details=f"sub-campaign id {ref.id}, campaign id {ref.campaign_id}, "
        f"list id {ref.list_id}",
    )
    return Launched(ref, handle)
