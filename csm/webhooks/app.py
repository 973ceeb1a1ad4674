"""The receiver's routes: Twilio's status, answer and inbound webhooks, and a health count.

Each webhook is checked by csm.webhooks.forms (size, form, signature: the
signature is the routes' only authentication, so `csm web` mounts them outside its
sign-in), then written by one statement of csm.webhooks.store. The answer URL
returns TwiML (csm.webhooks.twiml): on a bridged pass's live answer it waits,
with short queries and no held connection, for the worker to choose an agent.
Logs name the route and the outcome only: never a number, a body or a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from csm.database import driver_connection
from csm.providers.twilio import protocol
from csm.providers.twilio.protocol import (
    ANSWERED_BY_RESULTS,
    LIVE_ANSWERS,
    SMS_INBOUND_PATH,
    SMS_STATUS_PATH,
    VOICE_ANSWER_PATH,
    VOICE_STATUS_PATH,
)
from csm.settings import Settings
from csm.suppressions.inbound import record_sms
from csm.suppressions.targets import BadCell, SuppressionKind, Target
from csm.vocabulary import Channel
from csm.webhooks import store, twiml
from csm.webhooks.forms import Refused, SignedForm, signed_form

log = logging.getLogger("csm.webhooks")

PREFIX = "/twilio"
HEALTH_PATH = f"{PREFIX}/health"
#: How long the answer URL waits for the worker's agent decision before it redirects.
ANSWER_WAIT_S = 5.0
#: How often it looks while waiting (one short query each time).
ANSWER_POLL_S = 0.1
PROVIDER = "twilio"

Endpoint = Callable[[Request], Awaitable[Response]]


class Receiver:
    """The webhook endpoints, bound to the settings (public URL, token) and the database."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        answer_wait_s: float = ANSWER_WAIT_S,
        answer_poll_s: float = ANSWER_POLL_S,
    ) -> None:
        self.engine = engine
        self.public_url = settings.public_url
        self.token = settings.twilio_auth_token.get_secret_value()
        self.default_region = settings.default_region
        self.answer_wait_s = answer_wait_s
        self.answer_poll_s = answer_poll_s

    def routes(self) -> list[Route]:
        """The routes under /twilio, relative to it (see `mount`)."""
        return [
            Route(
                _under(VOICE_STATUS_PATH),
                self._guarded("voice_status", self.voice_status),
                methods=["POST"],
            ),
            Route(
                _under(VOICE_ANSWER_PATH),
                self._guarded("voice_answer", self.voice_answer),
                methods=["POST"],
            ),
            Route(
                _under(SMS_STATUS_PATH),
                self._guarded("sms_status", self.sms_status),
                methods=["POST"],
            ),
            Route(
                _under(SMS_INBOUND_PATH),
                self._guarded("sms_inbound", self.sms_inbound),
                methods=["POST"],
            ),
            Route(_under(HEALTH_PATH), self.health, methods=["GET"]),
        ]

    def _guarded(self, kind: str, endpoint: Endpoint) -> Endpoint:
        """The endpoint, with a refusal answered as its status and short plain reason."""

        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Refused as refused:
                log.warning("refused %s webhook: %s %s", kind, refused.status, refused.reason)
                return PlainTextResponse(refused.reason + "\n", refused.status)

        return guarded

    async def _form(self, request: Request, path: str) -> SignedForm:
        return await signed_form(request, public_url=self.public_url, path=path, token=self.token)

    # ---- status callbacks ------------------------------------------------------------------

    async def voice_status(self, request: Request) -> Response:
        form = await self._form(request, VOICE_STATUS_PATH)
        status = form.require("CallStatus")
        callback = store.Callback(
            kind="voice_status",
            key=form.key,
            sid=form.require("CallSid"),
            status=status,
            rank=_rank(Channel.VOICE, "CallStatus", status),
            answered_by=_answered_by(form),
            error_code=_error_code(form),
        )
        return _acknowledged(callback, await store.apply_status(self.engine, callback))

    async def sms_status(self, request: Request) -> Response:
        form = await self._form(request, SMS_STATUS_PATH)
        status = form.require("MessageStatus")
        callback = store.Callback(
            kind="sms_status",
            key=form.key,
            sid=form.require("MessageSid"),
            status=status,
            rank=_rank(Channel.SMS, "MessageStatus", status),
            error_code=_error_code(form),
        )
        return _acknowledged(callback, await store.apply_status(self.engine, callback))

    # ---- the answer URL ----------------------------------------------------------------------

    async def voice_answer(self, request: Request) -> Response:
        form = await self._form(request, VOICE_ANSWER_PATH)
        answered_by = _answered_by(form)
        callback = store.Callback(
            kind="voice_answer",
            key=form.key,
            sid=form.require("CallSid"),
            status=store.IN_PROGRESS,
            rank=protocol.CALL_RANKS[store.IN_PROGRESS],
            answered_by=answered_by,
        )
        attempt = await store.apply_answer(self.engine, callback)
        if not attempt.found:
            log.info("voice_answer webhook matched no attempt: kept as an orphan")
            return _xml(twiml.HANGUP)
        # No AMD result (detection off) counts as a person, as protocol.call_result reads it.
        if not attempt.bridge or (answered_by or "human") not in LIVE_ANSWERS:
            return _xml(twiml.say(attempt.message))
        assert form.key is not None  # found implies a key
        address = attempt.connect_to
        if address is None:
            address = await self._decision(form.key)
        if address is None:
            return _xml(twiml.redirect(form.url))
        if address == "":
            return _xml(twiml.not_connected(attempt.message))
        return _xml(twiml.dial(address))

    async def _decision(self, key: str) -> str | None:
        """The worker's agent decision for a bridged live answer, polled up to the wait."""
        deadline = time.monotonic() + self.answer_wait_s
        while True:
            address = await store.connect_to(self.engine, key)
            if address is not None:
                return address
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(self.answer_poll_s, left))

    # ---- inbound texts -----------------------------------------------------------------------

    async def sms_inbound(self, request: Request) -> Response:
        form = await self._form(request, SMS_INBOUND_PATH)
        sid = form.require("MessageSid")
        body = form.require("Body")
        try:
            sender = Target.read(SuppressionKind.PHONE, form.require("From"), self.default_region)
        except BadCell:
            raise Refused(400, "field From is not a phone number") from None
        async with driver_connection(self.engine) as connection, connection.transaction():
            received = await record_sms(
                connection, provider=PROVIDER, sid=sid, sender=sender, text=body
            )
        log.info(
            "sms_inbound webhook: %s, %s",
            "new" if received.new else "repeated",
            "opted out" if received.opted_out else "no opt-out",
        )
        return _xml(twiml.EMPTY)

    # ---- health --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """Counts only (orphans awaiting reconciliation, events kept): no personal data."""
        return JSONResponse(await store.counts(self.engine))


def mount(
    settings: Settings, engine: AsyncEngine, *, answer_wait_s: float = ANSWER_WAIT_S
) -> Mount:
    """The receiver's routes mounted at /twilio: `csm web` adds this to its own routes."""
    receiver = Receiver(settings, engine, answer_wait_s=answer_wait_s)
    return Mount(PREFIX, routes=receiver.routes())


def create_app(
    settings: Settings, engine: AsyncEngine, *, answer_wait_s: float = ANSWER_WAIT_S
) -> Starlette:
    """The receiver alone, as `csm webhooks` serves it."""
    return Starlette(routes=[mount(settings, engine, answer_wait_s=answer_wait_s)])


def _under(path: str) -> str:
    assert path.startswith(PREFIX + "/"), path
    return path[len(PREFIX) :]


def _rank(channel: Channel, field: str, status: str) -> int:
    rank = protocol.rank(channel, status)
    if rank == 0:
        raise Refused(400, f"field {field} is not a status of the protocol: {status[:32]!r}")
    return rank


def _answered_by(form: SignedForm) -> str | None:
    answered_by = form.get("AnsweredBy")
    if answered_by is not None and answered_by not in ANSWERED_BY_RESULTS:
        raise Refused(400, f"field AnsweredBy is not a value of the protocol: {answered_by[:32]!r}")
    return answered_by


def _error_code(form: SignedForm) -> str | None:
    code = form.get("ErrorCode")
    if code is not None and not (code.isascii() and code.isdigit() and len(code) <= 10):
        raise Refused(400, "field ErrorCode is not a number")
    return code


def _acknowledged(callback: store.Callback, applied: store.Applied) -> Response:
    if not applied.found:
        log.info("%s webhook matched no attempt: kept as an orphan", callback.kind)
    return _xml(twiml.EMPTY)


def _xml(document: str) -> Response:
    return Response(document, media_type=twiml.CONTENT_TYPE)
