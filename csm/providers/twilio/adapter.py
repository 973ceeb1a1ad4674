"""Voice, dialer and SMS attempts through Twilio (or a compatible carrier).

An attempt is one row in `provider_attempts`, claimed before its POST:
- claimed now → POST (paced by the account's calls per second); the carrier's SID is
  stored and the attempt waits on the outcome board for the callbacks' final status.
- claimed before (a batch worked again after a crash) → never POSTed again: its stored
  result, or a wait for the outcome it is still having.
- POST refused (4xx) → settled at once with the protocol's refused result.
- carrier unreachable, nothing sent → the row goes and ConnectionError says so (the
  pass's outage loop tries again later).
- no final status by the deadline (placed_at + CSM_TWILIO_OUTCOME_TIMEOUT_S) → looked
  up by SID; with no SID (the POST's answer was lost) the account's list of calls or
  messages to that number is searched: found → adopted; nothing → the POST never
  reached the carrier, so it is placed now. A lookup that fails settles `unknown`.

On a pass with agents a live answer is returned as soon as the receiver records it,
while the call waits at the answer URL; the pass decides (an agent, or not) and calls
`connect`, which the receiver's TwiML turns into <Dial> or the message.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.channels.base import DECIDED, AttemptOutcome, AttemptRequest
from csm.passes.clock import Pacer
from csm.pooled import borrowed
from csm.providers.twilio import protocol, rows
from csm.providers.twilio.board import OutcomeBoard
from csm.providers.twilio.client import (
    ConfigurationError,
    Refused,
    Resource,
    TwilioClient,
    Unreachable,
    Unsure,
)
from csm.providers.twilio.rows import Row
from csm.settings import Settings
from csm.vocabulary import UNKNOWN, Channel

#: What a live answer is reported as (csm.dialer.LIVE; not imported: the dialer is the
#: pass's business, the adapter only speaks the carrier's side).
LIVE = "delivered_person"
#: How long a deadline lookup may retry the carrier before the attempt is `unknown`.
LOOKUP_FOR = 30.0
#: Deadline lookups that found the call still going, before it counts as what it met.
MAX_LOOKUPS = 3
#: A listed call or message created this long before its row's placed_at is another's.
CLOCK_SKEW = timedelta(seconds=60)


class TwilioProvider:
    """What voice and SMS share: claim, place, wait, look up, settle."""

    idempotent = True  # a repeated attempt key is answered from provider_attempts
    asynchronous = True  # outcomes come back later: a pass gives its lanes bigger batches
    protocol_channel = Channel.VOICE

    def __init__(
        self,
        engine: AsyncEngine,
        client: TwilioClient,
        *,
        public_url: str,
        from_: str,
        outcome_timeout: float,
        bucket: Pacer | None = None,
        board: OutcomeBoard | None = None,
        agent_address: str = "sip:{group}@agents.invalid",
    ) -> None:
        if outcome_timeout <= 0:
            raise ValueError(
                f"CSM_TWILIO_OUTCOME_TIMEOUT_S must be positive, not {outcome_timeout}"
            )
        self.engine = engine
        self.client = client
        self.public_url = public_url
        self.from_ = from_
        self.timeout = outcome_timeout
        self.bucket = bucket or Pacer(None)
        self.board = board or OutcomeBoard(engine)
        self.agent_address_template = agent_address  # voice: where live answers are bridged

    async def close(self) -> None:
        await self.board.close()
        await self.client.close()

    # ---- the attempt -----------------------------------------------------------------

    async def attempt(self, request: AttemptRequest) -> AttemptOutcome:
        key = request.attempt_key
        bridge = self._bridges(request)
        async with borrowed(self.engine) as connection:
            claimed = await rows.claim(
                connection,
                key,
                channel=request.channel.value,
                bridge=bridge,
                message=request.message if self.protocol_channel is Channel.VOICE else None,
            )
            stored = None if claimed else await rows.read(connection, key)
        if claimed:
            refused = await self._place(request)
            if refused is not None:
                return refused
            deadline = time.monotonic() + self.timeout
        else:
            assert stored is not None
            if stored.state == "settled":
                return self._stored_outcome(stored.result, stored.connect_to, bridge)
            deadline = time.monotonic() + max(0.0, self.timeout - stored.age)
        return await self._await(request, bridge, deadline)

    def _bridges(self, request: AttemptRequest) -> bool:
        return False

    @staticmethod
    def _stored_outcome(result: str | None, connect_to: str | None, bridge: bool) -> AttemptOutcome:
        # a bridged attempt settled before was decided before (connect), or its call ended
        # without a decision: either way no agent may be taken for it now
        return AttemptOutcome(result or UNKNOWN, DECIDED if bridge else "")

    async def _place(self, request: AttemptRequest) -> AttemptOutcome | None:
        """POST the claimed attempt; an outcome only when the carrier refused it."""
        key = request.attempt_key
        await self.bucket.wait()
        try:
            resource = await self._create(request, time.monotonic() + self.timeout)
        except Refused as refused:
            result = protocol.refused_result(self.protocol_channel, refused.code)
            async with borrowed(self.engine) as connection:
                result = await rows.settle(connection, key, result, error_code=refused.code)
            return AttemptOutcome(result, f"refused {refused.status} {refused.code or ''}".strip())
        except (Unreachable, ConfigurationError):
            async with borrowed(self.engine) as connection:
                await rows.forget(connection, key)
            raise
        except Unsure:
            sid = status = None  # found out later: a callback or the deadline lookup
        else:
            sid, status = resource.sid, resource.status
        async with borrowed(self.engine) as connection:
            await rows.placed(
                connection, key, sid, status, protocol.rank(self.protocol_channel, status)
            )
        return None

    async def _await(
        self, request: AttemptRequest, bridge: bool, deadline: float
    ) -> AttemptOutcome:
        key = request.attempt_key
        lookups = 0
        while True:
            row = await self.board.wait(key, deadline)
            if row is not None:
                return await self._ready(key, row, bridge)
            lookups += 1
            outcome = await self._look_up(request, bridge, last=lookups >= MAX_LOOKUPS)
            if outcome is not None:
                return outcome
            deadline = time.monotonic() + self.timeout

    async def _ready(self, key: str, row: Row, bridge: bool) -> AttemptOutcome:
        if row.state == "settled":
            return self._stored_outcome(row.result, row.connect_to, bridge)
        if row.final:
            result = self._result(row.status or "", row.answered_by, row.error_code)
            async with borrowed(self.engine) as connection:
                result = await rows.settle(connection, key, result)
            # a bridged call that ended before csm decided: no agent may take it now
            return AttemptOutcome(result, DECIDED if bridge else "")
        return AttemptOutcome(LIVE)  # a bridged live answer: the pass decides, then connect

    async def _look_up(
        self, request: AttemptRequest, bridge: bool, *, last: bool
    ) -> AttemptOutcome | None:
        """At the deadline: ask the carrier. An outcome, or None to wait another period
        (the call still going, or placed just now because it never reached the carrier)."""
        key = request.attempt_key
        async with borrowed(self.engine) as connection:
            stored = await rows.read(connection, key)
        if stored is None:
            raise LookupError(f"attempt {key}: its provider_attempts row is gone")
        if stored.state == "settled" or stored.status_rank >= protocol.FINAL_RANK:
            return await self._ready(key, stored, bridge)
        until = time.monotonic() + LOOKUP_FOR
        try:
            if stored.sid is not None:
                resource = await self._fetch(stored.sid, until)
            else:
                resource = await self._find(request, stored, until)
        except (Unreachable, Refused, ConfigurationError):
            return await self._settle(key, UNKNOWN)
        if resource is None:
            if stored.sid is not None:  # the carrier does not know the SID it gave
                return await self._settle(key, UNKNOWN)
            return await self._place(request)  # it never reached the carrier: place it now
        status = resource.status or ""
        rank = protocol.rank(self.protocol_channel, status)
        at_deadline = self.protocol_channel is Channel.SMS and status == "sent"
        if rank >= protocol.FINAL_RANK or at_deadline:
            result = self._result(status, resource.answered_by, resource.error_code, True)
            return await self._settle(key, result, resource, rank)
        if bridge and resource.answered_by in protocol.LIVE_ANSWERS:
            async with borrowed(self.engine) as connection:
                await rows.placed(connection, key, resource.sid, status, rank)
            return AttemptOutcome(LIVE)
        if not last:
            async with borrowed(self.engine) as connection:
                await rows.placed(connection, key, resource.sid, status, rank)
            return None
        if status == "in-progress" and resource.answered_by:  # answered: what it met is known
            result = protocol.call_result("completed", resource.answered_by, None)
            return await self._settle(key, result, resource, rank)
        return await self._settle(key, UNKNOWN, resource, rank)

    async def _settle(
        self, key: str, result: str, resource: Resource | None = None, rank: int = 0
    ) -> AttemptOutcome:
        async with borrowed(self.engine) as connection:
            result = await rows.settle(
                connection,
                key,
                result,
                sid=resource.sid if resource else None,
                status=resource.status if resource else None,
                rank=rank,
                answered_by=resource.answered_by if resource else None,
                error_code=resource.error_code if resource else None,
            )
        return AttemptOutcome(result)

    async def _find(
        self, request: AttemptRequest, stored: rows.Stored, until: float
    ) -> Resource | None:
        """The carrier's record of a POST whose answer was lost: the account's calls or
        messages to the number since the row was written, that no other attempt owns."""
        since = stored.placed_at - CLOCK_SKEW
        found = await self._list(request, since.date(), until)
        found = [r for r in found if r.created is None or r.created >= since]
        if found:
            async with borrowed(self.engine) as connection:
                owned = await rows.known_sids(connection, [r.sid for r in found])
            found = [r for r in found if r.sid not in owned]
        if not found:
            return None
        return min(found, key=lambda r: (r.created is None, r.created or stored.placed_at))

    # ---- per channel -----------------------------------------------------------------

    async def _create(self, request: AttemptRequest, deadline: float) -> Resource:
        raise NotImplementedError

    async def _fetch(self, sid: str, until: float) -> Resource | None:
        raise NotImplementedError

    async def _list(self, request: AttemptRequest, since: date, until: float) -> list[Resource]:
        raise NotImplementedError

    def _result(
        self,
        status: str,
        answered_by: str | None,
        error_code: str | None,
        at_deadline: bool = False,
    ) -> str:
        raise NotImplementedError


class TwilioVoice(TwilioProvider):
    """Voice (AVM) and dialer calls: the pass's message is spoken after the beep (or to a
    person); on a pass with agents a live answer waits for `connect`."""

    protocol_channel = Channel.VOICE

    def _bridges(self, request: AttemptRequest) -> bool:
        return request.agent_group is not None

    async def _create(self, request: AttemptRequest, deadline: float) -> Resource:
        key = request.attempt_key
        return await self.client.create_call(
            to=request.address,
            from_=self.from_,
            url=protocol.callback_url(self.public_url, protocol.VOICE_ANSWER_PATH, key),
            status_callback=protocol.callback_url(self.public_url, protocol.VOICE_STATUS_PATH, key),
            deadline=deadline,
        )

    async def _fetch(self, sid: str, until: float) -> Resource | None:
        return await self.client.fetch_call(sid, deadline=until)

    async def _list(self, request: AttemptRequest, since: date, until: float) -> list[Resource]:
        return await self.client.find_calls(
            to=request.address, from_=self.from_, since=since, deadline=until
        )

    def _result(
        self,
        status: str,
        answered_by: str | None,
        error_code: str | None,
        at_deadline: bool = False,
    ) -> str:
        return protocol.call_result(status, answered_by, error_code)

    def agent_address(self, group: str, stored: str | None) -> str:
        return stored or self.agent_address_template.format(group=group)

    async def connect(self, request: AttemptRequest, address: str, result: str) -> None:
        async with borrowed(self.engine) as connection:
            await rows.connect(connection, request.attempt_key, address, result)


class TwilioSms(TwilioProvider):
    """Text messages: the pass's message is the body (never stored)."""

    protocol_channel = Channel.SMS

    async def _create(self, request: AttemptRequest, deadline: float) -> Resource:
        return await self.client.create_message(
            to=request.address,
            from_=self.from_,
            body=request.message or "",
            status_callback=protocol.callback_url(
                self.public_url, protocol.SMS_STATUS_PATH, request.attempt_key
            ),
            deadline=deadline,
        )

    async def _fetch(self, sid: str, until: float) -> Resource | None:
        return await self.client.fetch_message(sid, deadline=until)

    async def _list(self, request: AttemptRequest, since: date, until: float) -> list[Resource]:
        return await self.client.find_messages(
            to=request.address, from_=self.from_, since=since, deadline=until
        )

    def _result(
        self,
        status: str,
        answered_by: str | None,
        error_code: str | None,
        at_deadline: bool = False,
    ) -> str:
        return protocol.message_result(status, error_code, at_deadline=at_deadline)


def client_from(settings: Settings) -> TwilioClient:
    return TwilioClient(
        settings.twilio_base_url,
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
    )


def voice_from(settings: Settings, engine: AsyncEngine) -> TwilioVoice:
    """The voice and dialer provider of a worker (one: its calls-per-second bucket and
    outcome board serve every pass)."""
    return TwilioVoice(
        engine,
        client_from(settings),
        public_url=settings.public_url,
        from_=settings.twilio_from,
        outcome_timeout=settings.twilio_outcome_timeout_s,
        bucket=Pacer.per_second(settings.twilio_calls_per_second),
        agent_address=settings.twilio_agent_address,
    )


def sms_from(settings: Settings, engine: AsyncEngine) -> TwilioSms:
    """The SMS provider of a worker. Not paced by calls per second (that limit is the
    account's calls'); a carrier's 429 is retried with backoff."""
    return TwilioSms(
        engine,
        client_from(settings),
        public_url=settings.public_url,
        from_=settings.twilio_from,
        outcome_timeout=settings.twilio_outcome_timeout_s,
    )
