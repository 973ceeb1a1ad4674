"""What a workflow's history says about its activities: how many attempts failed.

Temporal records an activity's started event once, when the attempt that ends it
starts, with that attempt's number: the attempts before it failed (or timed out) and
left no event of their own. So the failed attempts of an activity are its last
attempt's number less one, plus one more when that last attempt failed too.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

_ENDED_BADLY = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
}


async def failed_activity_attempts(handle: WorkflowHandle) -> int:
    """Activity attempts that failed or timed out in the workflow's history (retried or not)."""
    failed = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            failed += event.activity_task_started_event_attributes.attempt - 1
        elif event.event_type in _ENDED_BADLY:
            failed += 1
    return failed
