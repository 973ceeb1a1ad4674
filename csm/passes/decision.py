"""The per-contact decision of a pass, as pure functions over named inputs.

Whether a contact is attempted now or skipped (and why), when its windows open,
which of its devices a cap holds, and what a result means for the next device.
No database, no clock, no I/O: the caller reads the time and the checks' data
(`csm.compliance.gate.BatchGate`, or anything shaped like `Checks`) and passes
them in, so every rule here is tested without a database (tests/test_pass_decision.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from csm.passes.contact import Contact, Device
from csm.strategy.model import Window
from csm.vocabulary import NOT_ATTEMPTED_CODES, RESULT_CODES, SkipReason

#: Results after which the pass tries the contact's next device.
NEXT_DEVICE = frozenset(
    {"busy", "no_answer", "bad_device", "not_connected", "undelivered_machine", "failed", "bounced"}
)
#: Results worth another try of the same device, in a later round after the pass's gap.
RETRYABLE = frozenset({"busy", "no_answer", "not_connected", "failed"})
#: Results that end the pass for a contact: someone or something was reached (or may have been).
ENDS_CONTACT = RESULT_CODES - NEXT_DEVICE - NOT_ATTEMPTED_CODES

#: A policy's calling hours for one channel and state: (start, end) on the contact's clock.
Hours = tuple[dt_time, dt_time]


class Checks(Protocol):
    """The contact policy's view of a batch (`BatchGate`): what the decision reads."""

    blocked: Mapping[int, str]  # contact → skip reason (final outcome, lease, reservation)

    def closed(self, channel: str, state: str | None, local: datetime) -> str | None: ...

    def blocking(
        self,
        contact_id: int,
        channel: str,
        device: str,
        at: datetime,
        zone: ZoneInfo,
        state: str | None,
    ) -> str | None: ...

    def per_device(self, rule: str) -> bool: ...

    def reason(self, rule: str) -> str: ...


def skip_reason(
    contact: Contact,
    *,
    channel: str,
    window: Window | None,
    window_time: dt_time | None,
    local: datetime,
    checks: Checks | None,
) -> str | None:
    """Why the contact is not attempted now, or None: it is.

    In this order: suppressed account, no consent for the channel, blocked by the policy
    (final outcome here or elsewhere, leased, reserved, connected today), no eligible
    device, outside the pass's window (`window_time`: now on the window's clock), and
    the policy's holiday or hours for the contact's state (`local`: now on its clock).
    `checks` None: the contact policy is off (benchmarks only).
    """
    if contact.suppressed:
        return SkipReason.SUPPRESSED
    if not contact.consented:
        return SkipReason.NO_CONSENT
    if checks is not None and contact.contact_id in checks.blocked:
        return checks.blocked[contact.contact_id]
    if not contact.devices:
        if contact.suppressed_devices:
            return SkipReason.SUPPRESSED
        return SkipReason.NO_ELIGIBLE_DEVICE
    if window is not None:
        assert window_time is not None
        if not (window.start <= window_time < window.end):
            return SkipReason.OUTSIDE_WINDOW
    if checks is not None:
        return checks.closed(channel, contact.state, local)
    return None


class Hold(NamedTuple):
    """A cap (or the conversation pause) that forbids attempting a device now."""

    rule: str
    per_device: bool  # the device's own cap: the contact's next device may still be tried


def device_hold(
    checks: Checks | None, contact: Contact, device: Device, *, channel: str, at: datetime
) -> Hold | None:
    """What holds `device` of `contact` at `at`, counting the attempts made so far."""
    if checks is None:
        return None
    rule = checks.blocking(
        contact.contact_id, channel, device.address, at, contact.zone, contact.state
    )
    if rule is None:
        return None
    return Hold(rule, checks.per_device(rule))


def tries_next_device(result: str) -> bool:
    """Whether the contact's next device is tried after `result` (else the contact is done)."""
    return result in NEXT_DEVICE


def opens_at(
    now: datetime,
    *,
    window: Window | None,
    window_zone: ZoneInfo | None,
    hours: Hours | None,
    zone: ZoneInfo,
) -> datetime:
    """When today both the pass's window (on `window_zone`'s clock) and the policy's
    `hours` (on the contact's `zone`) are open: the latest of their openings, `now` if
    both are open already or have no opening left today."""
    openings = [now]
    if window is not None:
        assert window_zone is not None
        day = now.astimezone(window_zone).date()
        openings.append(datetime.combine(day, window.start, window_zone))
    if hours is not None:
        openings.append(datetime.combine(now.astimezone(zone).date(), hours[0], zone))
    return max(openings)


def wait_note(
    opens: datetime, now: datetime, *, zone: ZoneInfo, hours: Hours | None, left: int
) -> str | None:
    """Why the pass waits for a contact whose windows open at `opens` (the first of the
    `left` contacts of the round, in opening order): counts and times only, no personal
    data. None when its windows are open now."""
    if opens <= now:
        return None
    local = opens.astimezone(zone)
    what = "its window"
    if hours is not None and datetime.combine(local.date(), hours[0], zone) >= opens:
        what = "calling hours"
    return (
        f"waiting for {what}: {left:,} contact{'s' if left != 1 else ''} left, the next"
        f" open at {local:%H:%M} on their clock ({opens.astimezone(UTC):%H:%M} UTC)"
    )
