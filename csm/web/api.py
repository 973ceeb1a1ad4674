"""The JSON endpoints and the live stream: what the sub-campaign page and scripts call.

Scripts authenticate with the token as `Authorization: Bearer` (and may name
themselves with `X-CSM-User`); every action is recorded with who did it and what
became of it, refused or done.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from temporalio.service import RPCError

from csm import control
from csm.amendments import Amendment, SetFilter
from csm.errors import CsmError
from csm.subcampaigns import SubCampaignRef
from csm.web import data
from csm.web.auth import manager, signed_in
from csm.web.context import WebContext, context_of
from csm.web.preview import amended_count

#: Seconds between two live updates of a sub-campaign page.
REFRESH_SECONDS = 1.0


@signed_in
async def sub_campaigns(request: Request) -> Response:
    """Every sub-campaign's row of the index, as JSON."""
    web = context_of(request)
    rows = await data.sub_campaign_rows(web.client, web.engine)
    return JSONResponse([row.as_json() for row in rows])


@signed_in
async def status(request: Request) -> Response:
    """One refresh of a sub-campaign's page, as JSON."""
    web = context_of(request)
    ref = await data.find(web.engine, request.path_params["ref"])
    shown = await data.live(web.client, web.engine, ref)
    return JSONResponse(json.loads(json.dumps(shown, default=str)))


@signed_in
async def events(request: Request) -> Response:
    """The live stream: one refresh every REFRESH_SECONDS while the page is open."""
    web = context_of(request)
    ref = await data.find(web.engine, request.path_params["ref"])

    async def stream() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            try:
                shown = await data.live(web.client, web.engine, ref)
            except (RPCError, CsmError) as err:
                shown = {"error": str(err)}  # e.g. no worker answers: say so, keep going
            yield f"data: {json.dumps(shown, default=str)}\n\n"
            await asyncio.sleep(REFRESH_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream")


@signed_in
async def lifecycle(request: Request) -> Response:
    """Pause, resume or stop; 409 with the reason when the workflow refuses."""
    web, user = context_of(request), manager(request)
    ref = await data.find(web.engine, request.path_params["ref"])
    action = str((await _json(request)).get("action", ""))
    try:
        outcome = f"done: {await control.change_lifecycle(web.client, ref, action)}"
    except control.ControlError as err:
        return await _refused(web, ref, user, action[:32] or "?", "", err)
    await data.record_action(web.engine, ref.id, user, action[:32] or "?", "", outcome)
    return JSONResponse({"outcome": outcome})


@signed_in
async def preview(request: Request) -> Response:
    """How many contacts a pending pass would select with a new filter (422: a bad filter)."""
    web = context_of(request)
    ref = await data.find(web.engine, request.path_params["ref"])
    body = await _json(request)
    try:
        selected = await amended_count(
            web.engine, ref, str(body.get("pass", "")), str(body.get("filter", ""))
        )
    except CsmError as err:
        return JSONResponse({"error": str(err)}, 422)
    return JSONResponse({"selected": selected})


@signed_in
async def amend(request: Request) -> Response:
    """Change a pending pass's filter for today; 422 for a bad amendment, 409 when refused."""
    web, user = context_of(request), manager(request)
    ref = await data.find(web.engine, request.path_params["ref"])
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
        await data.record_action(web.engine, ref.id, user, "amend", detail, f"refused: {err}")
        return JSONResponse({"outcome": f"refused: {err}"}, 422)
    try:
        await control.amend(web.client, ref, amendment)
    except control.ControlError as err:
        return await _refused(web, ref, user, "amend", detail, err)
    await data.record_action(web.engine, ref.id, user, "amend", detail, "done")
    return JSONResponse({"outcome": "done"})


async def _refused(
    web: WebContext,
    ref: SubCampaignRef,
    user: str,
    action: str,
    detail: str,
    error: control.ControlError,
) -> Response:
    """A change that did not happen, recorded as refused with its reason: 409 when the
    sub-campaign said no, 503 when asking again may succeed (no worker, no Temporal)."""
    outcome = f"refused: {error.reason}"
    await data.record_action(web.engine, ref.id, user, action, detail, outcome)
    return JSONResponse({"outcome": outcome}, 503 if error.retryable else 409)


async def _json(request: Request) -> dict[str, Any]:
    """The request's JSON object; anything else (no body, bad JSON, a list) is empty."""
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
