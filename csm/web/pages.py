"""The HTML endpoints: sign-in and sign-out, the sub-campaigns index, one sub-campaign's page.

The sub-campaign page is a frame: its pass cards come from the live stream
(`csm.web.api.events`) and its buttons call the JSON API, from static/app.js.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from csm.web import data
from csm.web.auth import end_session, manager, signed_in, start_session, token_matches
from csm.web.context import context_of
from csm.web.rendering import page


async def login_page(request: Request) -> Response:
    """The sign-in form; `next` is where to go after, `error` why the last try failed."""
    return page(
        request,
        "login.html",
        error=request.query_params.get("error", ""),
        target=request.query_params.get("next", "/"),
    )


async def login(request: Request) -> Response:
    """Check the name and token of the form; on success, a session cookie and on to `next`."""
    web = context_of(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()[:100]
    target = str(form.get("next", "/"))
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # only a path of this site: no open redirect
    if not name or not token_matches(web.token, str(form.get("token", ""))):
        return RedirectResponse("/login?error=wrong+name+or+token", 303)
    response = RedirectResponse(target, 303)
    start_session(response, request, web.token, name, web.session_seconds)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303)
    end_session(response)
    return response


@signed_in
async def index(request: Request) -> Response:
    """Every sub-campaign with its state and today's progress."""
    web = context_of(request)
    rows = await data.sub_campaign_rows(web.client, web.engine)
    return page(
        request, "index.html", user=manager(request), rows=rows, history_link=web.history_link
    )


@signed_in
async def sub_page(request: Request) -> Response:
    """One sub-campaign: live pass cards, lifecycle buttons, the amend form, the logs."""
    web = context_of(request)
    ref = await data.find(web.engine, request.path_params["ref"])
    return page(
        request,
        "sub.html",
        user=manager(request),
        ref=ref,
        history_link=web.history_link(ref.workflow_id),
    )
