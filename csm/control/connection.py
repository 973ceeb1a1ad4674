"""Reaching Temporal for the control: a client from the settings, and where ops look.

A server that cannot be reached is one TemporalUnavailable saying which server and
what to check, never the transport's traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from csm.control.errors import unreachable

if TYPE_CHECKING:
    from temporalio.client import Client

    from csm.settings import Settings


async def connect(settings: Settings) -> Client:
    """A Temporal client (csm.temporal_client), or one line saying which server is missing."""
    from csm.temporal_client import connect as connect_client

    try:
        return await connect_client(settings)
    except RuntimeError as err:
        raise unreachable(settings, err) from None


def workflow_url(settings: Settings, workflow_id: str) -> str:
    """The Temporal UI page of a workflow (its history, current details, search attributes)."""
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
