"""The one control surface of a sub-campaign: start it, amend it, pause, resume or stop it,
and read its plan and status.

The CLI, the web page and the starter scripts call these functions; each talks to the
workflow by its registered names with the payload types of csm.subcampaign_types (never
importing the workflow module), and turns whatever Temporal raises into one
ControlError (csm.control.errors). A sub-campaign's state is derived in csm.states.

    launched = await start_sub_campaign(client, engine, campaign=..., list_name=...,
                                        task_queue=settings.task_queue)
    plan = await amend(client, launched.sub_campaign, amendment)
    state = await change_lifecycle(client, launched.sub_campaign, "pause")
"""

from csm.control.connection import connect, workflow_url
from csm.control.errors import (
    BadRequest,
    ControlError,
    NotFound,
    NoWorker,
    Refused,
    TemporalUnavailable,
    translated,
)
from csm.control.start import Launched, refuse_if_stopped, start_sub_campaign
from csm.control.steer import amend, change_lifecycle, read_plan, read_status
from csm.control.until import until_instant

__all__ = [
    "BadRequest",
    "ControlError",
    "Launched",
    "NoWorker",
    "NotFound",
    "Refused",
    "TemporalUnavailable",
    "amend",
    "change_lifecycle",
    "connect",
    "read_plan",
    "read_status",
    "refuse_if_stopped",
    "start_sub_campaign",
    "translated",
    "until_instant",
    "workflow_url",
]
