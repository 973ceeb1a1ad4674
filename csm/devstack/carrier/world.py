"""What the world does with each call and message: drawn by csm's simulator, told in Twilio's words.

The attempt key in the callback URL (`{sub_campaign}-{YYYYMMDD}-{pass}-{contact}-{device}-{try}`)
gives the simulator what it needs to draw (csm.channels.simulator), so the carrier and
a test that asks the simulator agree on every outcome. The draw is a csm result code;
`CALL_PLANS` and `MESSAGE_PLANS` say how each plays out in the protocol.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date

from csm.channels.base import AttemptRequest
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.vocabulary import Channel


@dataclass(frozen=True, slots=True)
class CallPlan:
    """How a call plays out: rings or not, answered by whom (AMD), its final status."""

    rings: bool
    answered_by: str | None  # None: never answered
    final: str  # CallStatus: completed | busy | no-answer | failed
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """How a message plays out: refused at the POST, or its final status."""

    final: str  # MessageStatus: delivered | undelivered; "" when refused
    error_code: str | None = None
    refused: bool = False  # the POST answers 400 with error_code; no message exists


#: csm's voice result → the call that produces it (the adapter maps it back with
#: csm.providers.twilio.protocol.call_result).
CALL_PLANS: dict[str, CallPlan] = {
    "delivered_person": CallPlan(True, "human", "completed"),
    "delivered_machine": CallPlan(True, "machine_end_beep", "completed"),
    "undelivered_machine": CallPlan(True, "machine_end_other", "completed"),
    "hang_up_on_machine": CallPlan(True, "machine_start", "completed"),
    "no_answer": CallPlan(True, None, "no-answer"),
    "busy": CallPlan(False, None, "busy"),
    "not_connected": CallPlan(False, None, "failed", "31005"),
    "bad_device": CallPlan(False, None, "failed", "13224"),
}
MESSAGE_PLANS: dict[str, MessagePlan] = {
    "success": MessagePlan("delivered"),
    "failed": MessagePlan("undelivered", "30003"),
    "opted_out": MessagePlan("", "21610", refused=True),
}


class World:
    """The seeded world the carrier's calls and messages meet."""

    def __init__(self, seed: int):
        self.simulator = SimulatedCarrier(SimulatorConfig(seed=seed))

    def result(self, key: str | None, channel: Channel) -> str:
        """The csm result code the simulator draws for this attempt key."""
        return self.simulator.outcome_for(attempt_request(key, channel))

    def call_plan(self, key: str | None) -> CallPlan:
        return CALL_PLANS.get(self.result(key, Channel.VOICE), CALL_PLANS["not_connected"])

    def message_plan(self, key: str | None) -> MessagePlan:
        return MESSAGE_PLANS.get(self.result(key, Channel.SMS), MESSAGE_PLANS["failed"])


def attempt_request(key: str | None, channel: Channel) -> AttemptRequest:
    """The attempt as the simulator sees it: parsed from the key, a wireless phone at noon.

    The carrier cannot tell a dialer call from a voice one, so calls use the voice tables.
    A key that is missing or not csm's shape still gets a stable draw (from its checksum).
    """
    parts = parse_key(key)
    if parts is None:
        checksum = zlib.crc32((key or "").encode())
        day, pass_number, contact, device, try_number = date(2000, 1, 1), 1, checksum, 0, 1
    else:
        day, pass_number, contact, device, try_number = parts
    return AttemptRequest(
        attempt_key=key or "",
        day=day,
        pass_number=pass_number,
        contact_id=contact,
        device_id=device,
        try_number=try_number,
        device_kind="wireless",
        address="",
        channel=channel,
        local_hour=12,
    )


def parse_key(key: str | None) -> tuple[date, int, int, int, int] | None:
    """(day, pass, contact, device, try) of an attempt key, None if it is not one."""
    if not key:
        return None
    parts = key.rsplit("-", 5)
    if len(parts) != 6:
        return None
    _, day_text, *numbers = parts
    try:
        day = date(int(day_text[:4]), int(day_text[4:6]), int(day_text[6:8]))
        pass_number, contact, device, try_number = (int(n) for n in numbers)
    except ValueError:
        return None
    if len(day_text) != 8:
        return None
    return day, pass_number, contact, device, try_number
