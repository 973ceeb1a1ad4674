"""One call or message played out in Twilio's protocol, step by step, in order.

A call: `initiated`, `ringing`, then (answered) the answer URL is requested after
answering-machine detection and its TwiML played, `in-progress`, and the final status;
a message: `queued`, `sent`, the final status. Each step waits its delay (ring 5–25 s,
AMD 3 s, talk 10–40 s, SMS 1–5 s) times the speed; at speed 0 nothing waits but the
steps still go one after another, each callback answered before the next is sent.
The `reorder` fault moves the final status before `ringing` (or `sent`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin

from csm.devstack.carrier import twiml
from csm.devstack.carrier.callbacks import CallbackSender
from csm.devstack.carrier.faults import Faults
from csm.devstack.carrier.record import Placement, Record
from csm.devstack.carrier.world import CallPlan, MessagePlan
from csm.providers.twilio.protocol import API_VERSION, rank
from csm.vocabulary import Channel

#: How many Redirects one call follows before the carrier hangs up.
MAX_REDIRECTS = 30
ANSWER = "answer"  # the step that requests the answer URL


class Playout:
    """Plays out calls and messages for one account."""

    def __init__(
        self,
        *,
        account_sid: str,
        sender: CallbackSender,
        record: Record,
        faults: Faults,
        speed: float,
        seed: int,
    ):
        self.account_sid = account_sid
        self.sender = sender
        self.record = record
        self.faults = faults
        self.speed = speed
        self._rng = random.Random(seed)

    # ---- calls ------------------------------------------------------------
    async def call(
        self, placement: Placement, plan: CallPlan, status_url: str | None, answer_url: str
    ) -> None:
        answered = plan.final == "completed"
        talk = self._rng.randint(10, 40) if answered else 0
        steps: list[tuple[str, float]] = [("initiated", 0.0)]
        if plan.rings:
            steps.append(("ringing", 1.0))
        ring = self._rng.uniform(5, 25)
        if answered:
            steps += [(ANSWER, ring + 3.0), ("in-progress", 0.0), (plan.final, float(talk))]
        else:
            steps.append((plan.final, ring if plan.rings else 1.0))
        if self.faults.reordered():
            steps = _final_first(steps, "ringing")
        sequence = 0
        for step, delay in steps:
            await self._wait(delay)
            if step == ANSWER:
                placement.answered_by = plan.answered_by
                await self._answer(placement, answer_url)
                continue
            final = step == plan.final
            if final:
                placement.error_code = plan.error_code
                placement.duration = talk
                placement.ended = datetime.now(UTC)
                placement.answered_by = plan.answered_by
            _advance(placement, Channel.VOICE, step)
            if status_url is None:
                continue
            params = self._call_params(placement, step)
            params["SequenceNumber"] = str(sequence)
            sequence += 1
            if final:
                params["CallDuration"] = str(talk)
                if plan.answered_by:
                    params["AnsweredBy"] = plan.answered_by
                if plan.error_code:
                    params["ErrorCode"] = plan.error_code
            placement.sent.append(step)
            await self.sender.status(status_url, params)

    def _call_params(self, placement: Placement, status: str) -> dict[str, str]:
        return {
            "CallSid": placement.sid,
            "AccountSid": self.account_sid,
            "CallStatus": status,
            "To": placement.to or "",
            "From": placement.from_,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
            "Timestamp": format_datetime(datetime.now(UTC)),
        }

    async def _answer(self, placement: Placement, url: str) -> None:
        """Request the answer URL and play its TwiML, following Redirects."""
        params = self._call_params(placement, "in-progress")
        del params["Timestamp"]
        if placement.answered_by:
            params["AnsweredBy"] = placement.answered_by
        for _ in range(MAX_REDIRECTS + 1):
            response = await self.sender.post(url, params)
            if response is None or response.status_code >= 400:
                placement.actions.append("application-error")
                return
            try:
                verbs = twiml.parse(response.content)
            except twiml.TwimlError:
                placement.actions.append("application-error")
                return
            redirect = await self._play(placement, verbs)
            if redirect is None:
                return
            url = urljoin(url, redirect)
        placement.actions.append("redirect-limit")

    async def _play(self, placement: Placement, verbs: list[twiml.Verb]) -> str | None:
        """Play the verbs; the URL to redirect to, or None when the call ends."""
        for verb in verbs:
            if verb.name == "Say":
                placement.actions.append(f"say:{verb.text}")
            elif verb.name == "Pause":
                placement.actions.append("pause")
                await self._wait(twiml.pause_seconds(verb))
            elif verb.name == "Dial":
                placement.actions.append(f"dial:{verb.text}")
                if placement.key:
                    self.record.bridged[placement.key] = verb.text
                return None
            elif verb.name in ("Hangup", "Reject"):
                placement.actions.append("hangup")
                return None
            elif verb.name == "Redirect":
                placement.actions.append("redirect")
                return verb.text
            else:
                placement.actions.append(verb.name.lower())
        return None

    # ---- messages -----------------------------------------------------------
    async def message(
        self, placement: Placement, plan: MessagePlan, status_url: str | None
    ) -> None:
        steps = [
            ("queued", 0.0),
            ("sent", self._rng.uniform(1, 5)),
            (plan.final, self._rng.uniform(1, 5)),
        ]
        if self.faults.reordered():
            steps = _final_first(steps, "sent")
        for step, delay in steps:
            await self._wait(delay)
            final = step == plan.final
            if final:
                placement.error_code = plan.error_code
                placement.ended = datetime.now(UTC)
            _advance(placement, Channel.SMS, step)
            if status_url is None:
                continue
            params = {
                "MessageSid": placement.sid,
                "SmsSid": placement.sid,
                "AccountSid": self.account_sid,
                "MessageStatus": step,
                "SmsStatus": step,
                "To": placement.to or "",
                "From": placement.from_,
                "ApiVersion": API_VERSION,
            }
            if final and plan.error_code:
                params["ErrorCode"] = plan.error_code
            placement.sent.append(step)
            await self.sender.status(status_url, params)

    async def _wait(self, seconds: float) -> None:
        if self.speed > 0 and seconds > 0:
            await asyncio.sleep(seconds * self.speed)


def finish(placement: Placement, plan: CallPlan | MessagePlan) -> None:
    """Give a placement read back from the journal the final state its draw says."""
    placement.status = plan.final or "failed"
    placement.error_code = plan.error_code
    if isinstance(plan, CallPlan):
        placement.answered_by = plan.answered_by
        placement.duration = 0


def _advance(placement: Placement, channel: Channel, status: str) -> None:
    """Move the status the REST lookup reports, only ever up its rank."""
    if rank(channel, status) > rank(channel, placement.status):
        placement.status = status


def _final_first(steps: list[tuple[str, float]], before: str) -> list[tuple[str, float]]:
    """The steps with the last one (the final status) moved before `before` (or first)."""
    *rest, final = steps
    names = [name for name, _ in rest]
    at = names.index(before) if before in names else 0
    return [*rest[:at], final, *rest[at:]]


def without_detection(plan: CallPlan) -> CallPlan:
    """The plan of a call placed without answering-machine detection: no AnsweredBy."""
    return replace(plan, answered_by=None)
