"""One carrier: its account, world, record, faults and the callbacks in flight.

The REST routes (csm.devstack.carrier.app) hand it each request's form; it refuses
(CarrierError) or places, answers at once, and plays the placement out in a task of
its own. Per-request work is kept small: the carrier must take a bench's thousands of
placements a second on two cores.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from csm.devstack.carrier import playout
from csm.devstack.carrier.callbacks import CallbackSender
from csm.devstack.carrier.faults import Faults
from csm.devstack.carrier.record import Placement, Record, digest
from csm.devstack.carrier.resources import (
    INTERNAL_ERROR,
    INVALID_TO,
    NO_BODY,
    NO_FROM,
    NO_URL,
    TOO_MANY_REQUESTS,
    UNSUBSCRIBED,
    CarrierError,
)
from csm.devstack.carrier.world import World
from csm.providers.twilio.protocol import KEY_PARAM, SMS_INBOUND_PATH, callback_url

log = logging.getLogger(__name__)

E164 = re.compile(r"\+[1-9]\d{1,14}")
AMD_MODES = frozenset({"Enable", "DetectMessageEnd"})
#: Connections to the receivers the callbacks may hold at once.
CALLBACK_CONNECTIONS = 16

Form = dict[str, list[str]]


@dataclass
class CarrierConfig:
    account_sid: str
    auth_token: str
    public_url: str = "http://127.0.0.1:8411"  # where inbound texts are sent (the receiver)
    number: str = "+15005550006"  # the account's number: inbound texts are sent to it
    seed: int = 1
    speed: float = 0.0
    cps: float = 0.0  # calls per second of the account; 0: no limit
    journal: Path | None = None
    faults: Faults = field(default_factory=Faults)
    callback_retries: int = 3
    callback_backoff: float = 0.2  # seconds before the first retry, doubled each time


class CallsPerSecond:
    """The account's calls-per-second limit: a token bucket holding one second's calls."""

    def __init__(self, rate: float):
        self.set(rate)

    def set(self, rate: float) -> None:
        if rate < 0:
            raise ValueError(f"cps must be 0 (no limit) or more, not {rate}")
        self.rate = rate
        self.tokens = max(1.0, rate)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Carrier:
    def __init__(self, config: CarrierConfig):
        self.config = config
        self.faults = config.faults
        self.world = World(config.seed)
        self.record = Record(config.journal)
        self.limit = CallsPerSecond(config.cps)
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._sender: CallbackSender | None = None
        self._playout: playout.Playout | None = None

    # ---- life -----------------------------------------------------------------
    async def start(self) -> None:
        """Open the journal (finishing what it records) and the callback client."""
        for placement in self.record.open():
            plan = (
                self.world.call_plan(placement.key)
                if placement.kind == "call"
                else self.world.message_plan(placement.key)
            )
            playout.finish(placement, plan)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(
                max_connections=CALLBACK_CONNECTIONS,
                max_keepalive_connections=CALLBACK_CONNECTIONS,
            ),
        )
        self._sender = CallbackSender(
            self.config.auth_token,
            self._client,
            self.faults,
            retries=self.config.callback_retries,
            backoff=self.config.callback_backoff,
            concurrency=CALLBACK_CONNECTIONS // 2,
        )
        self._playout = playout.Playout(
            account_sid=self.config.account_sid,
            sender=self._sender,
            record=self.record,
            faults=self.faults,
            speed=self.config.speed,
            seed=self.config.seed,
        )

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self.record.close()

    @property
    def sender(self) -> CallbackSender:
        assert self._sender is not None, "carrier not started"
        return self._sender

    @property
    def play(self) -> playout.Playout:
        assert self._playout is not None, "carrier not started"
        return self._playout

    # ---- REST -------------------------------------------------------------------
    def admit(self, *, call: bool) -> None:
        """The faults and the calls-per-second limit, before anything is placed."""
        if self.faults.throttle():
            raise CarrierError(429, TOO_MANY_REQUESTS, "Too Many Requests")
        if self.faults.error():
            raise CarrierError(500, INTERNAL_ERROR, "Internal server error (injected fault)")
        if call and not self.limit.take():
            raise CarrierError(
                429, TOO_MANY_REQUESTS, f"Too Many Requests: over {self.limit.rate:g} calls/s"
            )

    def place_call(self, form: Form) -> Placement:
        to, from_ = _one(form, "To"), _one(form, "From")
        url, status_url = _one(form, "Url"), _one(form, "StatusCallback") or None
        key = _key(status_url) or _key(url)
        try:
            _check_numbers(to, from_)
            if not url:
                raise CarrierError(400, NO_URL, "Url parameter is required to place a call")
        except CarrierError:
            self.record.refuse(key)
            raise
        plan = self.world.call_plan(key)
        if _one(form, "MachineDetection") not in AMD_MODES and plan.answered_by:
            plan = playout.without_detection(plan)
        placement = self._new("CA", "call", key, to, from_)
        self._spawn(self.play.call(placement, plan, status_url, url))
        return placement

    def send_message(self, form: Form) -> Placement:
        to, from_ = _one(form, "To"), _one(form, "From")
        status_url = _one(form, "StatusCallback") or None
        key = _key(status_url)
        try:
            _check_numbers(to, from_)
            if not _one(form, "Body"):
                raise CarrierError(400, NO_BODY, "Message body is required")
            plan = self.world.message_plan(key)
            if plan.refused:
                raise CarrierError(400, UNSUBSCRIBED, "Attempt to send to unsubscribed recipient")
        except CarrierError:
            self.record.refuse(key)
            raise
        placement = self._new("SM", "message", key, to, from_)
        self._spawn(self.play.message(placement, plan, status_url))
        return placement

    def _new(self, prefix: str, kind: str, key: str | None, to: str, from_: str) -> Placement:
        placement = Placement(
            sid=prefix + uuid.uuid4().hex,
            kind=kind,
            key=key,
            to=to,
            to_digest=digest(to),
            from_=from_,
            created=datetime.now(UTC),
        )
        self.record.add(placement)
        return placement

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("a playout failed: %s", type(error).__name__)

    # ---- inbound ---------------------------------------------------------------
    async def inbound(self, from_: str, body: str, to: str | None = None) -> dict[str, object]:
        """Send the receiver a signed inbound text, as a carrier does when someone replies."""
        if not E164.fullmatch(from_ or ""):
            raise CarrierError(400, INVALID_TO, "inbound 'from' must be an E.164 number")
        sid = "SM" + uuid.uuid4().hex
        params = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.config.account_sid,
            "From": from_,
            "To": to or self.config.number,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        url = callback_url(self.config.public_url, SMS_INBOUND_PATH)
        response = await self.sender.post(url, params)
        return {
            "sid": sid,
            "status": None if response is None else response.status_code,
            "twiml": None if response is None else response.text,
        }


def _one(form: Form, name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def _key(url: str | None) -> str | None:
    """The attempt key in a callback URL's query (`?key=K`)."""
    if not url or "?" not in url:
        return None
    values = parse_qs(urlsplit(url).query).get(KEY_PARAM)
    return values[0] if values else None


def _check_numbers(to: str, from_: str) -> None:
    if not E164.fullmatch(to):
        raise CarrierError(400, INVALID_TO, "The 'To' number is not a valid phone number")
    if not from_:
        raise CarrierError(400, NO_FROM, "A 'From' phone number is required")
