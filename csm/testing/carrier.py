"""The local carrier (csm.devstack.carrier) served in-process for tests: a real HTTP
server on a free port, in the test's own event loop, so a test can both talk to it
over HTTP and read its state (`LocalCarrier.carrier`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from csm.devstack.carrier.app import create_app
from csm.devstack.carrier.carrier import Carrier, CarrierConfig
from csm.testing.servers import free_port


@dataclass
class LocalCarrier:
    url: str  # the base URL (CSM_TWILIO_BASE_URL)
    carrier: Carrier

    async def settled(self, within: float = 30.0) -> None:
        """Wait until every placement has played out (all its callbacks sent)."""
        await until(lambda: not self.carrier.tasks, within, "the carrier's callbacks")


@asynccontextmanager
async def serve_asgi(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in this event loop; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or task.done(), 20.0, f"a server on port {port}")
        if task.done():
            task.result()
            raise RuntimeError(f"the server on port {port} stopped during start-up")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def local_carrier(
    config: CarrierConfig, port: int | None = None
) -> AsyncIterator[LocalCarrier]:
    app = create_app(config)
    async with serve_asgi(app, port) as url:
        yield LocalCarrier(url, app.state.carrier)


async def until(condition: Callable[[], object], within: float, what: str) -> None:
    """Poll `condition` until true; TimeoutError naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"waited {within:.0f}s for {what}")
        await asyncio.sleep(0.01)
