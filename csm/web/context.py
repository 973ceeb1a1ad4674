"""What the endpoints share: the Temporal client, the database and the sign-in settings.

`create_app` keeps one `WebContext` on `app.state.web`; each endpoint is a plain
module-level function that reads it with `context_of(request)`, so no endpoint is a
closure over `create_app`'s arguments and each can be read (and tested) on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection
from temporalio.client import Client


@dataclass(frozen=True)
class WebContext:
    """The app's collaborators and settings, fixed when the app is made."""

    client: Client
    engine: AsyncEngine
    token: str
    #: How long a sign-in lasts (CSM_WEB_SESSION_HOURS, in seconds).
    session_seconds: float
    temporal_ui_url: str
    namespace: str

    def history_link(self, workflow_id: str) -> str:
        """The workflow's page in the Temporal UI."""
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{self.namespace}/workflows/{workflow_id}"


def context_of(connection: HTTPConnection) -> WebContext:
    """The context of the app serving this request."""
    return connection.app.state.web
