"""The web application: routes, the sign-in guard and error pages (see csm.web).

Endpoints live in csm.web.pages (HTML) and csm.web.api (JSON and the live stream);
they read the client, the database and the settings from `app.state.web`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from temporalio.client import Client

from csm.errors import CsmError
from csm.web import api, pages
from csm.web.auth import SessionBackend, refuse
from csm.web.context import WebContext
from csm.web.rendering import page

STATIC = Path(__file__).parent / "static"

ROUTES = [
    Route("/", pages.index),
    Route("/login", pages.login_page, methods=["GET"]),
    Route("/login", pages.login, methods=["POST"]),
    Route("/logout", pages.logout),
    Route("/sub/{ref}", pages.sub_page),
    Route("/events/{ref}", api.events),
    Route("/api/sub-campaigns", api.sub_campaigns),
    Route("/api/sub/{ref}", api.status),
    Route("/api/sub/{ref}/lifecycle", api.lifecycle, methods=["POST"]),
    Route("/api/sub/{ref}/preview", api.preview, methods=["POST"]),
    Route("/api/sub/{ref}/amend", api.amend, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def create_app(
    *,
    client: Client,
    engine: AsyncEngine,
    token: str,
    temporal_ui_url: str,
    namespace: str,
    session_hours: float,
    webhooks: BaseRoute | None = None,
) -> Starlette:
    """The app, bound to a Temporal client, the database and the access token.

    A sign-in lasts `session_hours` (CSM_WEB_SESSION_HOURS): the cookie expires then in
    the browser, and the server refuses it after that even if a browser keeps sending it.
    `webhooks` is the carrier's webhook receiver (csm.webhooks.mount, at /twilio): its
    routes ask for no sign-in, the carrier's signature is their authentication.
    """
    session_seconds = session_hours * 3600
    backend = SessionBackend(token, session_seconds)
    app = Starlette(
        routes=[*ROUTES, webhooks] if webhooks is not None else ROUTES,
        middleware=[Middleware(AuthenticationMiddleware, backend=backend)],
        exception_handlers={401: refuse, CsmError: not_found},
    )
    app.state.web = WebContext(
        client=client,
        engine=engine,
        token=token,
        session_seconds=session_seconds,
        temporal_ui_url=temporal_ui_url,
        namespace=namespace,
    )
    return app


async def not_found(request: Request, exc: Exception) -> Response:
    """A sub-campaign no reference names (csm.web.data.find): 404, as JSON or as a page."""
    if request.url.path.startswith(("/api/", "/events/")):
        return JSONResponse({"error": str(exc)}, 404)
    return page(request, "not_found.html", status_code=404, message=str(exc))
