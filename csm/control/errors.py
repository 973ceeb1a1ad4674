"""What can go wrong when steering a sub-campaign, as csm errors: the one translation of
what Temporal raises.

Every error says which sub-campaign, what was asked and why it did not happen; `reason`
holds the why alone, for callers that name the sub-campaign themselves (the web page
shows "refused: <reason>"). The classes tell a caller what to do: `Refused` and
`NotFound` will not change by asking again; `NoWorker` and `TemporalUnavailable` may.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from csm.errors import CsmError
from csm.states import state_key, sub_campaign_state

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from csm.lookups import SubCampaignRef
    from csm.settings import Settings


class ControlError(CsmError):
    """A request to a sub-campaign that did not happen (start, amend, lifecycle, status)."""

    #: Whether asking again later may succeed (a worker or the server may come back).
    retryable = False

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason if reason is not None else message


class BadRequest(ControlError):
    """The request itself is wrong (an `until` in the past, an amendment with nothing in it)."""


class Refused(ControlError):
    """The sub-campaign said no: its validator refused the change, or it has ended."""


class NotFound(ControlError):
    """Temporal has no run of the sub-campaign (registered, never started; another server)."""


class NoWorker(ControlError):
    """No worker took the request in time; it may still apply when one does."""

    retryable = True


class TemporalUnavailable(ControlError):
    """Temporal could not be reached, or answered that it is unavailable."""

    retryable = True


def where(client: Client) -> tuple[str, str]:
    """The server address and namespace a client talks to (for messages)."""
    return client.service_client.config.target_host, client.namespace


def unreachable(settings: Settings, error: RuntimeError) -> TemporalUnavailable:
    """A failed `Client.connect` as one line saying which server could not be reached."""
    reason = str(error).removeprefix("Failed client connect: ")
    inner = re.search(r'message: "([^"]+)"', reason)  # the OS error inside tonic's
    reason = inner.group(1) if inner else reason[:200]
    return TemporalUnavailable(
        f"cannot reach Temporal at {settings.temporal_address} "
        f"(namespace {settings.temporal_namespace}): {reason}; "
        "is it running (`csm dev up`), or is CSM_TEMPORAL_ADDRESS wrong?",
        reason=reason,
    )


@contextlib.asynccontextmanager
async def translated(client: Client, ref: SubCampaignRef, doing: str) -> AsyncIterator[None]:
    """Turn what Temporal raises inside the block into one ControlError about `ref`.

    `doing` words the request ("amend", "pause", "read the status of") for messages.
    """
    from temporalio.client import (
        RPCTimeoutOrCancelledError,
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
    )
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    from csm.results import QUERY_TIMEOUT

    handle = client.get_workflow_handle(ref.workflow_id)
    address, namespace = where(client)
    who = f"sub-campaign {ref.name!r} (workflow {ref.workflow_id})"
    cannot = f"cannot {doing} {who}"
    try:
        yield
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise Refused(f"{cannot}: {reason}", reason=reason) from None
    except RPCTimeoutOrCancelledError:
        queue = await _task_queue(handle)
        reason = (
            f"no worker took the request within {QUERY_TIMEOUT.total_seconds():.0f}s (it may "
            f"still apply when one does); is a worker (`csm worker`) serving task queue "
            f"{queue!r} at {address}?"
        )
        raise NoWorker(f"{cannot}: {reason}", reason=reason) from None
    except WorkflowQueryFailedError as err:
        reason = f"the query failed: {err}"
        raise ControlError(f"{cannot}: {reason}", reason=reason) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and "already completed" in err.message:
            state = await _closed_state(handle)
            final = " (stop is final)" if state == "stopped" else ""
            reason = f"the sub-campaign is {state}{final}"
            raise Refused(f"{cannot}: {reason}", reason=reason) from None
        if err.status == RPCStatusCode.NOT_FOUND:
            reason = (
                f"not found on Temporal at {address} (namespace {namespace}): start it with "
                "`csm start`, or point CSM_TEMPORAL_ADDRESS at the server that runs it"
            )
            raise NotFound(f"{who} was {reason}", reason=reason) from None
        no_poller = err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in err.message
        if no_poller or err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            queue = await _task_queue(handle)
            reason = (
                f"no worker answered; is a worker (`csm worker`) serving task queue {queue!r} "
                f"at {address}?"
            )
            raise NoWorker(f"{cannot}: {reason}", reason=reason) from None
        if err.status == RPCStatusCode.UNAVAILABLE:
            reason = f"Temporal at {address} is unavailable ({err.message})"
            raise TemporalUnavailable(f"{cannot}: {reason}", reason=reason) from None
        reason = f"Temporal said {err.status.name}: {err.message}"
        raise ControlError(f"{cannot}: {reason}", reason=reason) from None


async def _closed_state(handle: WorkflowHandle) -> str:
    """How a closed sub-campaign ended, from its search attribute (no worker needed)."""
    try:
        description = await handle.describe()
    except Exception:
        return "closed"
    recorded = description.typed_search_attributes.get(state_key())
    return sub_campaign_state(description.status, recorded)


async def _task_queue(handle: WorkflowHandle) -> str:
    try:
        return (await handle.describe()).task_queue
    except Exception:
        return "?"
