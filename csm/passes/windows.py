"""Waiting for contacts' windows: the pass's window and the policy's calling hours.

The selection is ordered by window opening, so a pass that starts when the first
zone opens works the later zones as their windows open. The wait comes before a
batch is leased: no account is leased while its window is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from temporalio import activity

from csm.compliance.policy import ContactPolicy
from csm.passes.contact import Contact
from csm.passes.context import PassRun
from csm.passes.decision import Hours, opens_at, wait_note
from csm.passes.notes import note


class HoursToday:
    """The policy's hours for each contact's state on the pass's channel, today; None on
    a holiday of its calendar (the attempt's check skips it at once: a holiday never
    opens, so nobody waits) or without a policy."""

    def __init__(self, run: PassRun, policy: ContactPolicy | None) -> None:
        self.policy = policy
        self.channel = run.params.definition.channel.value
        self.today = run.clock.now()
        self._by_state: dict[tuple[str | None, object], Hours | None] = {}

    def __call__(self, contact: Contact) -> Hours | None:
        if self.policy is None:
            return None
        key = (contact.state, contact.zone)
        if key not in self._by_state:
            on_holiday = self.today.astimezone(contact.zone).date() in self.policy.holidays
            hours = None if on_holiday else self.policy.hours_for(self.channel, contact.state)
            self._by_state[key] = hours
        return self._by_state[key]


def contact_opens_at(
    run: PassRun, contact: Contact, now: datetime, hours: Hours | None
) -> datetime:
    """When today the contact's windows are open (see `decision.opens_at`)."""
    window = run.params.definition.window
    return opens_at(
        now,
        window=window,
        window_zone=run.window_zone(contact) if window is not None else None,
        hours=hours,
        zone=contact.zone,
    )


async def opened(
    run: PassRun,
    batch: list[Contact],
    policy: ContactPolicy | None,
    cursor: int,
    *,
    wait: bool = True,
    left: int = 0,
) -> list[Contact]:
    """The batch's leading contacts whose windows are open, after waiting for the first
    (`wait=False`: those open now, maybe none). While it waits, the pass's note says for
    what, for how many contacts (`left` in the round) and until when."""
    if run.params.definition.window is None and policy is None:
        return batch
    hours = HoursToday(run, policy)
    if wait:
        first = batch[0]
        now = run.clock.now()
        text = wait_note(
            contact_opens_at(run, first, now, hours(first)),
            now,
            zone=first.zone,
            hours=hours(first),
            left=left,
        )
        if text:
            note(text)
        await window_open(run, first, asyncio.Event(), cursor, hours=hours(first))
        if text:
            note("")  # open: the pass works again
    now = run.clock.now()
    opening: dict[tuple[object, str | None], datetime] = {}  # by the contact's zone, state
    for n, contact in enumerate(batch):
        at = opening.get((contact.zone, contact.state))
        if at is None:
            at = opening[contact.zone, contact.state] = contact_opens_at(
                run, contact, now, hours(contact)
            )
        if at > now:
            return batch[:n]
    return batch


async def window_open(
    run: PassRun,
    contact: Contact,
    stopping: asyncio.Event,
    cursor: int,
    *,
    hours: Hours | None = None,
) -> bool:
    """Wait (heartbeating) until the contact's windows are open; False if told to stop."""
    clock = run.clock
    opens = contact_opens_at(run, contact, clock.now(), hours)
    while (wait := (opens - clock.now()).total_seconds()) > 0:
        activity.heartbeat(cursor)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=min(wait, 1.0))
        if stopping.is_set():
            return False
    return True
