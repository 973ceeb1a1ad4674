"""The cap checker: may one more attempt happen now, given the account's recent attempts?

Pure and deterministic, so a property test can hold it to its promise: for any
schedule of attempts it lets through, no configured cap is ever exceeded. The
pass calls it once per device attempt, with the account's attempts across all
campaigns (read while the pass holds the account's lease) plus those the pass
itself made since. `CapRules` is the policy's caps in the form that check needs,
built once per batch: the check runs for every attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
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


@dataclass(frozen=True, slots=True)
class _Cap:
    name: str
    max: int
    rolling: timedelta | None  # None: the contact's calendar day
    channels: frozenset[str]
    per_device: bool
    states: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class CapRules:
    """A policy's caps and conversation pause, parsed for the per-attempt check."""

    caps: tuple[_Cap, ...]
    pause_results: frozenset[str]
    pause_span: timedelta
    pause_channels: frozenset[str]

    @classmethod
    def of(cls, policy: ContactPolicy) -> CapRules:
        pause = policy.conversation_pause
        return cls(
            caps=tuple(
                _Cap(
                    name=cap.name,
                    max=cap.max,
                    rolling=cap.rolling,
                    channels=frozenset(cap.channels),
                    per_device=cap.per == "device",
                    states=frozenset(cap.states) if cap.states else None,
                )
                for cap in policy.caps
            ),
            pause_results=frozenset(pause.results if pause else ()),
            pause_span=timedelta(days=pause.days if pause else 0),
            pause_channels=frozenset(pause.channels if pause else ()),
        )

    def per_device(self, rule: str) -> bool:
        return any(cap.name == rule and cap.per_device for cap in self.caps)


def blocking_rule(
    rules: CapRules,
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
    for cap in rules.caps:
        if channel not in cap.channels or (cap.states is not None and state not in cap.states):
            continue
        if cap.rolling is not None:
            since = at - cap.rolling
            used = sum(
                1
                for past in history
                if past.at > since
                and past.channel in cap.channels
                and (not cap.per_device or past.device == device)
            )
        else:
            midnight = datetime.combine(at.astimezone(zone).date(), time(0), tzinfo=zone)
            used = sum(
                1
                for past in history
                if past.at >= midnight
                and past.channel in cap.channels
                and (not cap.per_device or past.device == device)
            )
        if used >= cap.max:
            return cap.name
    if channel in rules.pause_channels:
        since = at - rules.pause_span
        if any(p.result in rules.pause_results and p.at > since for p in history):
            return CONVERSATION_PAUSE
    return None
