"""What a workflow's history says about its activities: how many attempts failed, and why.

Temporal records an activity's started event once, when the attempt that ends it
starts, with that attempt's number and the failure of the attempt before: the attempts
before it failed (or timed out) and left no event of their own. So the failed attempts
of an activity are its last attempt's number less one, plus one more when that last
attempt failed too.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

_ENDED_BADLY = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
}


async def activity_failures(handle: WorkflowHandle) -> list[str]:
    """One line per failed or timed-out activity attempt in the workflow's history (the
    attempts before a last one are known by the last's number, and the failure of the
    one just before it)."""
    failures: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:
                last = started.last_failure.message or "(no message)"
                failures += [f"retried: {last}"] * (started.attempt - 1)
        elif (field := _ENDED_BADLY.get(event.event_type)) is not None:
            failure = getattr(event, field).failure
            failures.append(f"ended: {failure.message or failure.cause.message}")
    return failures


async def failed_activity_attempts(handle: WorkflowHandle) -> int:
    """Activity attempts that failed or timed out in the workflow's history (retried or not)."""
    return len(await activity_failures(handle))
