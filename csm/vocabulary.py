"""The domain's fixed words: channels, device kinds, result codes, skip reasons.

One place for them, so the strategy file, the filter language, the ledger and
the CLI agree (see DESIGN.md).
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    VOICE = "voice"  # automated voice message (AVM) with live-person / machine detection
    DIALER = "dialer"  # voice connected to an available agent
    SMS = "sms"
    EMAIL = "email"


class DeviceKind(StrEnum):
    WIRELESS = "wireless"
    LANDLINE = "landline"
    EMAIL = "email"


PHONE_KINDS = (DeviceKind.WIRELESS, DeviceKind.LANDLINE)

#: Which device kinds a channel can use.
CHANNEL_DEVICE_KINDS: dict[Channel, tuple[DeviceKind, ...]] = {
    Channel.VOICE: PHONE_KINDS,
    Channel.DIALER: PHONE_KINDS,
    Channel.SMS: (DeviceKind.WIRELESS,),
    Channel.EMAIL: (DeviceKind.EMAIL,),
}

VOICE_RESULTS = (
    "not_attempted",
    "busy",
    "no_answer",
    "skipped",
    "undelivered_machine",
    "delivered_machine",
    "hang_up_on_machine",
    "bad_device",
    "delivered_person",
    "not_connected",
    "abandoned",
    "agent_connected",
)
MESSAGE_RESULTS = ("not_attempted", "failed", "success", "opted_out", "bounced")
#: An attempt whose outcome was never learned (worker crash mid-send): recorded, never resent.
UNKNOWN = "unknown"
#: Agent dispositions a dialer pass may record (response groups may name them).
AGENT_DISPOSITIONS = ("promise_to_pay", "refused_to_pay", "wrong_party", "callback_requested")

RESULT_CODES: frozenset[str] = frozenset(
    (*VOICE_RESULTS, *MESSAGE_RESULTS, UNKNOWN, *AGENT_DISPOSITIONS)
)

#: Result codes that are not a real try of a device (do not count as attempts).
NOT_ATTEMPTED_CODES = frozenset({"not_attempted", "skipped"})


class SkipReason(StrEnum):
    """Why a selected contact got no attempt (the ledger's `skip_reason`).

    A cap's skip reads `capped:<cap name>`, so the ledger says which cap held it.
    """

    OUTSIDE_WINDOW = "outside_window"  # the pass's window or the policy's hours are closed
    HOLIDAY = "holiday"  # a holiday of the contact policy, on the contact's calendar
    CAPPED = "capped"
    RECENT_CONVERSATION = "recent_conversation"  # the policy's pause after a conversation
    SUPPRESSED = "suppressed"
    NO_ELIGIBLE_DEVICE = "no_eligible_device"
    NO_CONSENT = "no_consent"
    FINAL = "final"  # reached a final response group of this campaign
    FINAL_ELSEWHERE = "final_elsewhere"  # reached a group final for all campaigns, elsewhere
    LEASED = "leased"  # another pass was attempting the account at that moment
    RESERVED = "reserved"  # left to a higher-priority campaign's running pass
    CONNECTED = "connected"  # another pass of the sub-campaign connected it to an agent today
