"""The carrier's HTTP face: Twilio's REST routes for calls and messages, and `/_carrier/*`
for tests (record, placements, faults, inbound texts).

Twilio's routes take HTTP Basic auth with the account SID and auth token (401
otherwise) and answer errors as Twilio does: JSON {code, message, more_info, status}.
The `/_carrier/*` routes are the test double's own and take no auth (the carrier binds
to localhost).
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from csm.devstack.carrier.carrier import Carrier, CarrierConfig
from csm.devstack.carrier.faults import FaultError
from csm.devstack.carrier.record import Placement, digest
from csm.devstack.carrier.resources import (
    BAD_CREDENTIALS,
    BAD_PARAMETER,
    NOT_FOUND,
    CarrierError,
    call_json,
    message_json,
)
from csm.providers.twilio.protocol import API_VERSION

ACCOUNT = f"/{API_VERSION}/Accounts/{{account}}"
MAX_FORM_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

Handler = Callable[[Request], Awaitable[Response]]
Shape = Callable[[Placement, str], dict[str, object]]


def create_app(config: CarrierConfig) -> Starlette:
    """The carrier's ASGI app; `app.state.carrier` is the Carrier it serves."""
    carrier = Carrier(config)
    expected = (
        "Basic " + base64.b64encode(f"{config.account_sid}:{config.auth_token}".encode()).decode()
    )

    def account_of(request: Request) -> None:
        """Refuse a request without the account's credentials, or for another account."""
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise CarrierError(401, BAD_CREDENTIALS, "Authenticate: bad or missing credentials")
        if request.path_params["account"] != config.account_sid:
            raise CarrierError(404, NOT_FOUND, "The requested resource was not found")

    async def form_of(request: Request) -> dict[str, list[str]]:
        try:
            body = await request.body()
        except ClientDisconnect:  # a worker killed mid-POST: nothing placed, nobody to answer
            raise CarrierError(400, BAD_PARAMETER, "the client went away mid-request") from None
        if len(body) > MAX_FORM_BYTES:
            raise CarrierError(413, BAD_PARAMETER, f"request body over {MAX_FORM_BYTES} bytes")
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    async def create_call(request: Request) -> Response:
        try:
            account_of(request)
            form = await form_of(request)
            carrier.admit(call=True)
            placement = carrier.place_call(form)
        except CarrierError as err:
            return _error(err)
        return JSONResponse(call_json(placement, config.account_sid), status_code=201)

    async def create_message(request: Request) -> Response:
        try:
            account_of(request)
            form = await form_of(request)
            carrier.admit(call=False)
            placement = carrier.send_message(form)
        except CarrierError as err:
            return _error(err)
        return JSONResponse(message_json(placement, config.account_sid), status_code=201)

    def fetch(kind: str, shape: Shape) -> Handler:
        async def one(request: Request) -> Response:
            try:
                account_of(request)
                placement = carrier.record.by_sid.get(request.path_params["sid"])
                if placement is None or placement.kind != kind:
                    raise CarrierError(404, NOT_FOUND, "The requested resource was not found")
            except CarrierError as err:
                return _error(err)
            return JSONResponse(shape(placement, config.account_sid))

        return one

    def listing(kind: str, plural: str, date_field: str, shape: Shape) -> Handler:
        async def many(request: Request) -> Response:
            try:
                account_of(request)
                found = _listed(carrier, kind, date_field, request)
                size, page = _paging(request)
            except CarrierError as err:
                return _error(err)
            chunk = found[page * size : (page + 1) * size]
            more = len(found) > (page + 1) * size
            query = {k: v for k, v in request.query_params.items() if k != "Page"}
            next_uri = f"{request.url.path}?{urlencode({**query, 'Page': page + 1})}"
            return JSONResponse(
                {
                    plural: [shape(p, config.account_sid) for p in chunk],
                    "page": page,
                    "page_size": size,
                    "next_page_uri": next_uri if more else None,
                    "uri": f"{request.url.path}?{request.url.query}",
                }
            )

        return many

    async def record(request: Request) -> Response:
        rec, counts = carrier.record, carrier.sender.counts
        return JSONResponse(
            {
                "placements": dict(rec.placements),
                "calls": rec.calls,
                "messages": rec.messages,
                "callbacks_sent": counts.sent,
                "callbacks_failed": counts.failed,
                "callbacks_refused": counts.refused,
                "callbacks_lost": counts.lost,
                "callbacks_repeated": counts.repeated,
                "bridged": dict(rec.bridged),
                "refused": dict(rec.refused),
                "in_flight": len(carrier.tasks),
            }
        )

    async def placements(request: Request) -> Response:
        key = request.query_params.get("key")
        if key is None:
            return JSONResponse({"message": "give ?key=ATTEMPT_KEY"}, status_code=400)
        return JSONResponse(
            {"placements": [p.detail() for p in carrier.record.by_key.get(key, [])]}
        )

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise FaultError("the body must be a JSON object of fault settings")
                cps = changes.pop("cps", None)
                if cps is not None and (isinstance(cps, bool) or not isinstance(cps, int | float)):
                    raise FaultError(f"cps must be a number (0: no limit), not {cps!r}")
                carrier.faults.update(changes)
                if cps is not None:
                    carrier.limit.set(float(cps))
            except (ValueError, FaultError) as err:
                return JSONResponse({"message": str(err)}, status_code=400)
        return JSONResponse({**carrier.faults.as_dict(), "cps": carrier.limit.rate})

    async def inbound(request: Request) -> Response:
        try:
            given = json.loads(await request.body() or b"{}")
        except ValueError:
            given = None
        if not isinstance(given, dict) or not isinstance(given.get("body"), str):
            return JSONResponse(
                {"message": 'the body must be JSON {"from": "+E164", "body": "text"}'},
                status_code=400,
            )
        try:
            sent = await carrier.inbound(str(given.get("from", "")), given["body"], given.get("to"))
        except CarrierError as err:
            return _error(err)
        return JSONResponse(sent)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await carrier.start()
        try:
            yield
        finally:
            await carrier.stop()

    routes = [
        Route(f"{ACCOUNT}/Calls.json", create_call, methods=["POST"]),
        Route(
            f"{ACCOUNT}/Calls.json",
            listing("call", "calls", "StartTime", call_json),
            methods=["GET"],
        ),
        Route(f"{ACCOUNT}/Calls/{{sid}}.json", fetch("call", call_json), methods=["GET"]),
        Route(f"{ACCOUNT}/Messages.json", create_message, methods=["POST"]),
        Route(
            f"{ACCOUNT}/Messages.json",
            listing("message", "messages", "DateSent", message_json),
            methods=["GET"],
        ),
        Route(f"{ACCOUNT}/Messages/{{sid}}.json", fetch("message", message_json), methods=["GET"]),
        Route("/_carrier/record", record, methods=["GET"]),
        Route("/_carrier/placements", placements, methods=["GET"]),
        Route("/_carrier/faults", faults, methods=["GET", "POST"]),
        Route("/_carrier/inbound", inbound, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.carrier = carrier
    return app


def _error(err: CarrierError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def _listed(carrier: Carrier, kind: str, date_field: str, request: Request) -> list[Placement]:
    """The placements a list lookup asks for: To, From, and the day (=, >=, <=)."""
    query = request.query_params
    to = query.get("To")
    pool = carrier.record.by_to.get(digest(to), []) if to else list(carrier.record.by_sid.values())
    from_ = query.get("From")
    on, after, before = (_day(query, date_field + suffix) for suffix in ("", ">", "<"))
    found = []
    for placement in pool:
        day = placement.created.date()
        if placement.kind != kind or (from_ and placement.from_ != from_):
            continue
        if (on and day != on) or (after and day < after) or (before and day > before):
            continue
        found.append(placement)
    found.sort(key=lambda p: p.created, reverse=True)
    return found


def _day(query: QueryParams, name: str) -> date | None:
    text = query.get(name)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CarrierError(
            400, BAD_PARAMETER, f"{name} must be a date YYYY-MM-DD, not {text!r}"
        ) from None


def _paging(request: Request) -> tuple[int, int]:
    try:
        size = int(request.query_params.get("PageSize", DEFAULT_PAGE_SIZE))
        page = int(request.query_params.get("Page", 0))
    except ValueError:
        raise CarrierError(400, BAD_PARAMETER, "PageSize and Page must be whole numbers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
        raise CarrierError(400, BAD_PARAMETER, f"PageSize must be 1..{MAX_PAGE_SIZE}, Page >= 0")
    return size, page
