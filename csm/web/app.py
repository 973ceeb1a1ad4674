"""The web application: routes, pages and the live-update stream (see csm.web)."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from csm.amendments import Amendment, SetFilter
from csm.errors import CsmError
from csm.strategy.model import StrategyDefinition
from csm.web import data
from csm.web.auth import COOKIE, sign, token_matches, user_of

STATIC = Path(__file__).parent / "static"
NO_SUB_CAMPAIGNS = '<tr><td colspan="7">none yet: <code>csm start</code></td></tr>'
#: Seconds between two live updates of a sub-campaign page.
REFRESH_SECONDS = 1.0


def create_app(
    *,
    client: Client,
    engine: AsyncEngine,
    token: str,
    temporal_ui_url: str,
    namespace: str,
    session_hours: float,
) -> Starlette:
    """The app, bound to a Temporal client, the database and the access token.

    A sign-in lasts `session_hours` (CSM_WEB_SESSION_HOURS): the cookie expires then in
    the browser, and the server refuses it after that even if a browser keeps sending it.
    """
    session_seconds = session_hours * 3600

    def ui_link(workflow_id: str) -> str:
        base = temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{namespace}/workflows/{workflow_id}"

    def who(request: Request) -> str | None:
        return user_of(request, token, session_seconds)

    def refuse(request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "a token is needed (log in, or Bearer)"}, 401)
        return RedirectResponse(f"/login?next={request.url.path}", 303)

    async def login_page(request: Request) -> Response:
        error = request.query_params.get("error", "")
        target = html.escape(request.query_params.get("next", "/"))
        body = f"""
<form method="post" action="/login" class="login">
  <h1>csm</h1>
  <p>Sign in with the token from <code>CSM_WEB_TOKEN</code>.</p>
  {f'<p class="error">{html.escape(error)}</p>' if error else ""}
  <label>Your name <input name="name" required maxlength="100" autocomplete="name"></label>
  <label>Token <input name="token" type="password" required></label>
  <input type="hidden" name="next" value="{target}">
  <button type="submit">Sign in</button>
</form>"""
        return HTMLResponse(_page("sign in", body, None))

    async def login(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("name", "")).strip()[:100]
        target = str(form.get("next", "/"))
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        if not name or not token_matches(token, str(form.get("token", ""))):
            return RedirectResponse("/login?error=wrong+name+or+token", 303)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            sign(token, name),
            max_age=max(int(session_seconds), 1),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",  # behind a TLS proxy: X-Forwarded-Proto
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    async def index(request: Request) -> Response:
        user = who(request)
        if user is None:
            return refuse(request)
        rows = await data.sub_campaign_rows(client, engine)
        lines = "".join(
            f"""<tr><td><a href="/sub/{r.id}">{html.escape(r.name)}</a></td>
<td>{html.escape(r.campaign)}</td><td>{html.escape(r.list_name)}</td>
<td><span class="state {r.state}">{r.state}</span></td><td>{r.day}</td>
<td><progress max="{max(r.selected, 1)}" value="{r.handled}"></progress>
 {r.handled:,} / {r.selected:,}</td>
<td><a href="{html.escape(ui_link(r.workflow_id))}" target="_blank">history</a></td></tr>"""
            for r in rows
        )
        body = f"""<h1>Sub-campaigns</h1>
<table class="list"><thead><tr><th>sub-campaign</th><th>campaign</th><th>list</th>
<th>state</th><th>day</th><th>today's passes</th><th>Temporal</th></tr></thead>
<tbody>{lines or NO_SUB_CAMPAIGNS}</tbody></table>"""
        return HTMLResponse(_page("sub-campaigns", body, user))

    async def api_index(request: Request) -> Response:
        if who(request) is None:
            return refuse(request)
        return JSONResponse([r.as_json() for r in await data.sub_campaign_rows(client, engine)])

    async def sub_page(request: Request) -> Response:
        user = who(request)
        if user is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])
        body = f"""
<header class="sub" data-sub="{ref.id}">
  <h1>{html.escape(ref.name)} <small>campaign {html.escape(ref.campaign)}</small></h1>
  <p><span id="state" class="state">…</span> · day <span id="day">…</span>
   · <a href="{html.escape(ui_link(ref.workflow_id))}" target="_blank">history in the
   Temporal UI</a> · refresh <span id="db-ms">…</span> ms of database time</p>
  <div class="actions">
    <button data-action="pause">Pause</button>
    <button data-action="resume">Resume</button>
    <button data-action="stop" class="danger">Stop</button>
    <span id="action-result" role="status"></span>
  </div>
</header>
<section id="passes" class="passes"></section>
<section class="amend">
  <h2>Amend a pending pass</h2>
  <form id="amend">
    <label>Pass <select name="pass" id="amend-pass"></select></label>
    <label>New filter <input name="filter" id="amend-filter" size="60"
      placeholder="last_result in ('no_answer', 'busy')"></label>
    <label>Reason <input name="reason" id="amend-reason" maxlength="200"></label>
    <button type="button" id="amend-preview">Preview</button>
    <button type="submit" id="amend-confirm" disabled>Confirm</button>
    <p id="amend-result" role="status"></p>
  </form>
</section>
<section class="logs">
  <h2>Amendments</h2><ul id="amendments"></ul>
  <h2>Actions</h2><ul id="actions"></ul>
</section>
<script src="/static/app.js"></script>"""
        return HTMLResponse(_page(ref.name, body, user))

    async def events(request: Request) -> Response:
        if who(request) is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])

        async def stream() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                try:
                    shown = await data.live(client, engine, ref)
                except (RPCError, CsmError) as err:
                    shown = {"error": str(err)}  # e.g. no worker answers: say so, keep going
                yield f"data: {json.dumps(shown, default=str)}\n\n"
                await asyncio.sleep(REFRESH_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def api_status(request: Request) -> Response:
        if who(request) is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])
        return JSONResponse(
            json.loads(json.dumps(await data.live(client, engine, ref), default=str))
        )

    async def lifecycle(request: Request) -> Response:
        user = who(request)
        if user is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])
        action = str((await _json(request)).get("action", ""))
        handle = client.get_workflow_handle(ref.workflow_id)
        try:
            state = await handle.execute_update("lifecycle", action, result_type=str)
            outcome, status = f"done: {state}", 200
        except WorkflowUpdateFailedError as err:
            outcome, status = f"refused: {_cause(err)}", 409
        except RPCError as err:  # e.g. the workflow has completed
            outcome, status = f"refused: {err.message}", 409
        await data.record_action(engine, ref.id, user, action[:32] or "?", "", outcome)
        return JSONResponse({"outcome": outcome}, status)

    async def preview(request: Request) -> Response:
        if who(request) is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])
        body = await _json(request)
        try:
            selected = await _preview_count(
                ref, str(body.get("pass", "")), str(body.get("filter", ""))
            )
        except CsmError as err:
            return JSONResponse({"error": str(err)}, 422)
        return JSONResponse({"selected": selected})

    async def amend(request: Request) -> Response:
        user = who(request)
        if user is None:
            return refuse(request)
        ref = await data.find(engine, request.path_params["ref"])
        body = await _json(request)
        target, text = str(body.get("pass", "")), str(body.get("filter", ""))
        detail = f"pass {target}: filter = {text}"
        try:
            amendment = Amendment(
                operations=[SetFilter(target=target, filter=text)],
                author=user,
                reason=str(body.get("reason", ""))[:200],
            )
        except ValueError as err:
            await data.record_action(engine, ref.id, user, "amend", detail, f"refused: {err}")
            return JSONResponse({"outcome": f"refused: {err}"}, 422)
        handle = client.get_workflow_handle(ref.workflow_id)
        try:
            await handle.execute_update("amend", amendment)
            outcome, status = "done", 200
        except WorkflowUpdateFailedError as err:
            outcome, status = f"refused: {_cause(err)}", 409
        except RPCError as err:
            outcome, status = f"refused: {err.message}", 409
        await data.record_action(engine, ref.id, user, "amend", detail, outcome)
        return JSONResponse({"outcome": outcome}, status)

    async def _preview_count(ref: data.SubCampaignRef, target: str, text: str) -> int:
        from csm.preview import preview_strategy

        strategy = await data.strategy_of(engine, ref, None)
        passes = [p.model_copy() for p in strategy.passes]
        found = [i for i, p in enumerate(passes) if p.name == target or str(i + 1) == target]
        if not found:
            raise CsmError(f"no pass {target!r} in today's strategy")
        passes[found[0]] = passes[found[0]].model_copy(update={"filter": text})
        try:
            amended = with_passes(strategy, passes)
        except ValidationError as err:  # the amended filter does not check out
            message = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
            raise CsmError(message) from None
        result = await preview_strategy(engine, sub_campaign=ref.workflow_id, strategy=amended)
        for planned in result.passes:
            if planned.number == found[0] + 1:
                return planned.selected
        raise CsmError(f"pass {target!r} is not due today")

    async def handle_csm_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/api/", "/events/")):
            return JSONResponse({"error": str(exc)}, 404)
        return HTMLResponse(
            _page("not found", f"<p class='error'>{html.escape(str(exc))}</p>", None), 404
        )

    routes = [
        Route("/", index),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout),
        Route("/sub/{ref}", sub_page),
        Route("/events/{ref}", events),
        Route("/api/sub-campaigns", api_index),
        Route("/api/sub/{ref}", api_status),
        Route("/api/sub/{ref}/lifecycle", lifecycle, methods=["POST"]),
        Route("/api/sub/{ref}/preview", preview, methods=["POST"]),
        Route("/api/sub/{ref}/amend", amend, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={CsmError: handle_csm_error})


def with_passes(strategy: StrategyDefinition, passes: list[Any]) -> StrategyDefinition:
    """The strategy with its passes replaced (validated again, as a file would be)."""
    return StrategyDefinition.model_validate(
        {**strategy.model_dump(), "passes": [p.model_dump() for p in passes]}
    )


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _cause(error: WorkflowUpdateFailedError) -> str:
    cause = error.cause
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return str(getattr(cause, "message", None) or cause or error)


def _page(title: str, body: str, user: str | None) -> str:
    who = f'<span>{html.escape(user)}</span> · <a href="/logout">sign out</a>' if user else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · csm</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/style.css"></head>
<body><nav><a href="/">csm</a><span class="who">{who}</span></nav>
<main>{body}</main></body></html>"""
