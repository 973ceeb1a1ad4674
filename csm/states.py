"""A sub-campaign's state (running, paused, stopped, completed), derived in one place.

The workflow keeps its state in the `CsmState` search attribute. Once a run has
closed, Temporal's own status only says it completed, so a stopped sub-campaign
would read `completed` if a front end looked at the status alone. The CLI and the
web page both call `sub_campaign_state`, so they can never disagree.

Light on purpose: settings, workflow modules, the CLI and the web page import it, so
it imports nothing from temporalio until asked for the search attribute's key.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.common import SearchAttributeKey

#: The search attribute the sub-campaign workflow keeps its state in (spelled only here).
STATE_ATTRIBUTE = "CsmState"
#: The other search attributes it keeps current, so ops can filter the Temporal UI by them.
CAMPAIGN_ATTRIBUTE = "CsmCampaign"
SUB_CAMPAIGN_ATTRIBUTE = "CsmSubCampaign"
DAY_ATTRIBUTE = "CsmDay"

RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"
COMPLETED = "completed"
#: States a sub-campaign ends in: a closed run that recorded one of these ended that way.
FINAL_STATES = (STOPPED, COMPLETED)
#: Said when Temporal has no run for the workflow id (registered, never started; deleted).
UNKNOWN_STATE = "unknown"


@cache
def state_key() -> SearchAttributeKey[str]:
    """The typed key of `CsmState`, for upserting it and reading it back."""
    from temporalio.common import SearchAttributeKey

    return SearchAttributeKey.for_keyword(STATE_ATTRIBUTE)


def sub_campaign_state(status: WorkflowExecutionStatus | None, recorded: str | None) -> str:
    """The state to show for a sub-campaign's latest run.

    `status` is Temporal's execution status of that run (None: no run found);
    `recorded` its `CsmState` search attribute (None: not set yet). A running run
    is what it recorded (running before its first upsert). A closed run that
    recorded a final state ended that way (a stop closes the run as COMPLETED);
    otherwise Temporal's status says how it ended: failed, terminated, timed out.
    """
    if status is None:
        return UNKNOWN_STATE
    if status.name == "RUNNING":
        return recorded or RUNNING
    if recorded in FINAL_STATES:
        return recorded
    return status.name.lower().replace("_", " ")
