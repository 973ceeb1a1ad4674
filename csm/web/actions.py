"""The two calls that change a running sub-campaign from the web: lifecycle and amend.

They sit here, alone, with the one mapping of their refusals, so that the web can later
reach the workflow through the shared control module (issue 14) by changing this file
only. A refusal is an outcome, not an exception: the page shows it and the manager's
action log records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from csm.amendments import Amendment


@dataclass(frozen=True)
class Outcome:
    """What became of an action: "done…" or "refused: why", as shown and recorded."""

    text: str
    done: bool


async def change_lifecycle(client: Client, workflow_id: str, action: str) -> Outcome:
    """Pause, resume or stop the sub-campaign; done with the state it is in now."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        state = await handle.execute_update("lifecycle", action, result_type=str)
    except (WorkflowUpdateFailedError, RPCError) as err:
        return _refused(err)
    return Outcome(f"done: {state}", True)


async def amend(client: Client, workflow_id: str, amendment: Amendment) -> Outcome:
    """Apply a same-day amendment to the sub-campaign's pending passes."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        await handle.execute_update("amend", amendment)
    except (WorkflowUpdateFailedError, RPCError) as err:
        return _refused(err)
    return Outcome("done", True)


def _refused(error: WorkflowUpdateFailedError | RPCError) -> Outcome:
    """The workflow's own reason (the innermost cause), or Temporal's (e.g. it has completed)."""
    if isinstance(error, RPCError):
        return Outcome(f"refused: {error.message}", False)
    cause = error.cause
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return Outcome(f"refused: {getattr(cause, 'message', None) or cause or error}", False)
