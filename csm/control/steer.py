"""Steering a running sub-campaign: amend today's plan, pause, resume, stop, read its plan.

Each call goes through the workflow's validated updates or its `plan` query by name
(csm.subcampaign_types), bounded by QUERY_TIMEOUT so a missing worker is an error and
not a hang, and every Temporal failure comes back as one ControlError (csm.control.errors).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from csm.control.errors import translated
from csm.plan import PlanView
from csm.subcampaign_types import AMEND, LIFECYCLE, LifecycleAction

if TYPE_CHECKING:
    from temporalio.client import Client

    from csm.amendments import Amendment
    from csm.lookups import Db, SubCampaignRef
    from csm.results import SubCampaignStatus


async def amend(
    client: Client, ref: SubCampaignRef, amendment: Amendment, *, patient: bool = False
) -> PlanView:
    """Apply an amendment, all or nothing; the answer is the new plan.

    Raises Refused with the workflow's reason when it does not apply (a pass that has
    started, a filter that does not check out, a sub-campaign that has ended), and
    NoWorker when no worker answers within QUERY_TIMEOUT, unless `patient`: a caller
    that runs its own worker (the demo) waits as long as Temporal does, however busy
    that worker is.
    """
    from csm.results import QUERY_TIMEOUT

    handle = client.get_workflow_handle(ref.workflow_id)
    async with translated(client, ref, "amend"):
        return await handle.execute_update(
            AMEND,
            amendment,
            result_type=PlanView,
            rpc_timeout=None if patient else QUERY_TIMEOUT,
        )


async def change_lifecycle(client: Client, ref: SubCampaignRef, action: LifecycleAction) -> str:
    """Pause, resume or stop; the answer is the sub-campaign's new state.

    Raises Refused when the state does not allow it (resume a running one; anything
    after a stop, which is final), or for an action that is none of the three.
    """
    from csm.results import QUERY_TIMEOUT

    handle = client.get_workflow_handle(ref.workflow_id)
    async with translated(client, ref, action):
        return await handle.execute_update(
            LIFECYCLE, action, result_type=str, rpc_timeout=QUERY_TIMEOUT
        )


async def read_plan(client: Client, ref: SubCampaignRef) -> PlanView:
    """Today's plan as the workflow knows it: passes, their status, the amendment log."""
    from csm.results import query_plan

    async with translated(client, ref, "read the status of"):
        return await query_plan(client.get_workflow_handle(ref.workflow_id))


async def read_status(client: Client, db: Db, ref: SubCampaignRef) -> SubCampaignStatus:
    """Today's plan with live per-pass counts from the ledger: one refresh of a status view."""
    from csm.results import combine

    return await combine(db, ref, await read_plan(client, ref))
