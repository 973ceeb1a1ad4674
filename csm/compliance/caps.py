"""The cap checker: may one more attempt happen now, given the account's recent attempts?

Pure and deterministic, so a property test can hold it to its promise: for any
schedule of attempts it lets through, no configured cap is ever exceeded. The
pass calls it once per device attempt, with the account's attempts across all
campaigns (read while the pass holds the account's lease) plus those the pass
itself made since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from csm.compliance.policy import ContactPolicy

#: The rule name a skip carries when the conversation pause holds the contact.
CONVERSATION_PAUSE = "conversation_pause"


@dataclass(frozen=True, slots=True)
class PastAttempt:
    """An attempt that counts: when, on which channel and device, and how it ended."""

    at: datetime
    channel: str
    device: str | None
    result: str


def blocking_rule(
    policy: ContactPolicy,
    history: Sequence[PastAttempt],
    *,
    channel: str,
    device: str | None,
    at: datetime,
    zone: ZoneInfo,
    state: str | None = None,
) -> str | None:
    """The name of the first cap (or the conversation pause) that forbids this attempt, or None.

    An attempt at `at` is allowed when, for every cap holding this contact and channel,
    the attempts already counted in the cap's period ending at `at`, plus this one,
    stay within `max`. Rolling periods count attempts after `at - period`; "day"
    counts the contact's local calendar day. Attempts stamped after `at` count too:
    another worker's clock may run a little ahead, and an attempt made is an attempt.
    """
    for cap in policy.caps:
        if not cap.holds(channel, state):
            continue
        since = cap.window_start(at, zone)
        rolling = cap.rolling is not None
        used = 0
        for past in history:
            if past.channel not in cap.channels:
                continue
            if (past.at <= since) if rolling else (past.at < since):
                continue
            if cap.per == "device" and past.device != device:
                continue
            used += 1
        if used + 1 > cap.max:
            return cap.name
    pause = policy.conversation_pause
    if pause is not None and channel in pause.channels:
        since = at - timedelta(days=pause.days)
        if any(p.result in pause.results and p.at > since for p in history):
            return CONVERSATION_PAUSE
    return None
