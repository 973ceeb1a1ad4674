"""The local carrier (csm.devstack.carrier) served in-process for tests: a real HTTP
server on a free port, in the test's own event loop, so a test can both talk to it
over HTTP and read its state (`LocalCarrier.carrier`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from csm.devstack.carrier.app import create_app
from csm.devstack.carrier.carrier import Carrier, CarrierConfig
from csm.settings import Settings
from csm.testing.servers import free_port
from csm.webhooks.app import create_app as create_receiver


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


@dataclass
class Routed:
    """The local carrier and the webhook receiver, with settings that send a worker's
    voice and SMS to them through the Twilio adapter."""

    local: LocalCarrier
    settings: Settings


@asynccontextmanager
async def carrier_and_receiver(
    settings: Settings, engine: AsyncEngine, *, speed: float = 0.0, **faults: object
) -> AsyncIterator[Routed]:
    """Both served in this event loop on free ports; `speed` scales the carrier's ring,
    answer and talk delays (0: at once); `faults` set on the carrier (lose_callbacks=0.1,
    throttle_rate=0.3, ...)."""
    receiver_port = free_port()
    public_url = f"http://127.0.0.1:{receiver_port}"
    config = CarrierConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        public_url=public_url,
        number=settings.twilio_from,
        seed=settings.simulator_seed,
        speed=speed,
    )
    config.faults.update(faults)
    async with local_carrier(config) as local:
        routed = settings.model_copy(
            update={
                "voice_provider": "twilio",
                "sms_provider": "twilio",
                "twilio_base_url": local.url,
                "public_url": public_url,
            }
        )
        async with serve_asgi(create_receiver(routed, engine), receiver_port):
            yield Routed(local, routed)


async def until(condition: Callable[[], object], within: float, what: str) -> None:
    """Poll `condition` until true; TimeoutError naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"waited {within:.0f}s for {what}")
        await asyncio.sleep(0.01)
