"""A tiny Twilio-compatible REST server for the adapter's tests, served by uvicorn.

Stand-in until the local carrier (csm.devstack.carrier) lands: it should then replace
this stub in tests/test_twilio_client.py and tests/test_twilio_adapter.py. It answers
only what those tests need, over real HTTP: Basic auth, POST Calls.json/Messages.json
(scripted answers first, then 201 with a new SID), GET one resource by SID, and the
list filters. It sends no callbacks: the tests write provider_attempts as the webhook
receiver would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from csm.testing.servers import free_port

SID = "ACstub0000000000000000000000000000"
TOKEN = "stub-token"


@dataclass
class Scripted:
    """One scripted answer to the next POST: an HTTP status and Twilio's error code, or a
    delay before answering (longer than the client's timeout: the POST is `Unsure`)."""

    status: int
    code: int | None = None
    delay: float = 0.0
    create: bool = False  # the carrier keeps the resource even though the answer is late


@dataclass
class Stub:
    url: str = ""
    script: deque[Scripted] = field(default_factory=deque)
    posts: Counter[str] = field(default_factory=Counter)  # attempt key → POSTs seen
    post_tries: int = 0  # every POST, answered or not
    gets: list[str] = field(default_factory=list)  # paths of GETs
    list_queries: list[dict[str, str]] = field(default_factory=list)
    #: sid → the resource as GET answers it (tests set "status" etc.)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_resource(self, kind: str, to: str, key: str | None) -> dict[str, Any]:
        sid = f"{'CA' if kind == 'Calls' else 'SM'}{uuid.uuid4().hex}"  # unique across stubs
        resource = {
            "sid": sid,
            "status": "queued",
            "to": to,
            "kind": kind,
            "key": key,
            "date_created": format_datetime(datetime.now(UTC)),  # RFC 2822, as Twilio
        }
        self.resources[sid] = resource
        return resource

    def sid_of(self, key: str) -> str:
        return next(r["sid"] for r in self.resources.values() if r["key"] == key)


def _authorised(request: Request) -> bool:
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    return request.headers.get("authorization") == f"Basic {expected}"


def _error(status: int, code: int | None) -> JSONResponse:
    return JSONResponse({"code": code, "message": "stub error", "status": status}, status)


def _app(stub: Stub) -> Starlette:
    async def create(request: Request) -> Response:
        kind = request.path_params["kind"]
        if not _authorised(request):
            return _error(401, 20003)
        if request.path_params["account"] != SID:
            return _error(404, 20404)
        form = await request.form()
        callback = str(form.get("StatusCallback", ""))
        key = parse_qs(urlsplit(callback).query).get("key", [None])[0]
        stub.post_tries += 1
        scripted = stub.script.popleft() if stub.script else Scripted(201)
        if scripted.delay:
            if scripted.create:
                stub.posts[key or ""] += 1
                stub.new_resource(kind, str(form["To"]), key)
            await asyncio.sleep(scripted.delay)
            return _error(500, None)
        if scripted.status != 201:
            return _error(scripted.status, scripted.code)
        stub.posts[key or ""] += 1
        resource = stub.new_resource(kind, str(form["To"]), key)
        return JSONResponse({k: resource[k] for k in ("sid", "status")}, 201)

    async def fetch(request: Request) -> Response:
        if not _authorised(request):
            return _error(401, 20003)
        stub.gets.append(request.url.path)
        resource = stub.resources.get(request.path_params["sid"])
        if resource is None:
            return _error(404, 20404)
        return JSONResponse(resource)

    async def listing(request: Request) -> Response:
        kind = request.path_params["kind"]
        if not _authorised(request):
            return _error(401, 20003)
        query = dict(request.query_params)
        stub.list_queries.append(query)
        found = [
            r for r in stub.resources.values() if r["kind"] == kind and r["to"] == query.get("To")
        ]
        return JSONResponse({kind.lower(): found})

    base = "/2010-04-01/Accounts/{account}"
    return Starlette(
        routes=[
            Route(base + "/{kind:str}.json", create, methods=["POST"]),
            Route(base + "/{kind:str}.json", listing, methods=["GET"]),
            Route(base + "/{kind:str}/{sid:str}.json", fetch, methods=["GET"]),
        ]
    )


@contextlib.asynccontextmanager
async def twilio_stub() -> AsyncIterator[Stub]:
    """The stub on a free port, served in this event loop; its `url` is the base URL."""
    stub = Stub()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(stub), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.ensure_future(server.serve())
    async with asyncio.timeout(10):
        while True:
            if server.started:
                break
            await asyncio.sleep(0.02)
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        server.should_exit = True
        await serving
