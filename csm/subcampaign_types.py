"""The sub-campaign workflow's contract: its registered names, input, result and lifecycle.

Everything a client needs to start and steer a sub-campaign without importing the
workflow module (and the activities, tables and drivers behind it): the control
module (csm.control) calls the workflow by these names with these types, and
workflows/subcampaign.py registers itself under them. The names and the payload
shapes are what the captured histories hold: they never change (fields may be added
with defaults, never removed or renamed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from csm.plan import PLAN_QUERY as PLAN_QUERY  # the `plan` query: it lives with PlanView

#: The workflow's registered type (`@workflow.defn(name=...)`).
WORKFLOW_TYPE = "SubCampaign"
#: The validated update (and fire-and-forget signal) carrying an `Amendment`.
AMEND = "amend"
#: The validated update carrying "pause", "resume" or "stop"; it answers with the new state.
LIFECYCLE = "lifecycle"
#: The query answering with today's counts by pass status (ops' quick look).
PROGRESS_QUERY = "progress"
#: The signal a running pass's activity sends with a `WaitNote`.
PASS_NOTE = "pass_note"

LifecycleAction = Literal["pause", "resume", "stop"]

#: Lifecycle action → (the states it applies in, the state it leads to). The signals
#: `pause`, `resume` and `stop` carry the same actions as the `lifecycle` update.
LIFECYCLE_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("running", "paused"), "stopped"),
}


def lifecycle_refusal(action: str, state: str) -> str | None:
    """Why the `lifecycle` update refuses `action` in `state`; None when it applies."""
    if action not in LIFECYCLE_MOVES:
        return f"unknown action {action!r}: pause, resume or stop"
    if state in ("stopped", "completed"):
        return f"the sub-campaign is {state}; it cannot {action} (stop is final)"
    if action == "resume" and state != "paused":
        return f"the sub-campaign is {state}, not paused"
    if action == "pause" and state != "running":
        return f"the sub-campaign is {state}, not running"
    return None


@dataclass
class SubCampaignInput:
    """The one input of the workflow; fields may be added with defaults, never removed."""

    sub_campaign_id: int
    campaign_id: int
    list_id: int
    campaign: str
    sub_campaign: str
    day: date | None = None  # None: the campaign day it is when the run starts
    paused: bool = False  # carried across days
    previous_selection: tuple[date, int] | None = None
    days_run: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # result code → attempts, all days


@dataclass
class SubCampaignSummary:
    """What the workflow returns when the sub-campaign ends (completed or stopped)."""

    sub_campaign_id: int
    state: str  # completed | stopped
    days_run: int
    totals: dict[str, int]
