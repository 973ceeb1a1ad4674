"""Attempting a batch's contacts: the decision, then the devices through the provider.

The hot path of a pass (once per contact): a batch's shared values are worked out once
in its `BatchContext`, times come from the ticking clock.
"""

from __future__ import annotations

import asyncio
import string
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from csm.agents import CallRef, group_address
from csm.channels import AttemptOutcome, AttemptRequest, ChannelProvider
from csm.channels.base import DECIDED, BridgingProvider
from csm.compliance.gate import BatchGate
from csm.dialer import CONNECTED, LIVE, DialerLines, LiveAnswers, abandon_history
from csm.ledger import AttemptRow, PassKey
from csm.passes.clock import Pacer
from csm.passes.contact import Contact, Device, new_record
from csm.passes.context import PassRun
from csm.passes.decision import device_hold, skip_reason, tries_next_device
from csm.passes.notes import note
from csm.strategy.model import Window
from csm.vocabulary import UNKNOWN, Channel

if TYPE_CHECKING:
    from csm.pooled import Connection

PROVIDER_OUTAGE_LIMIT = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Calls:
    """A pass whose live answers go to agents: what answers become, and its dialer lines.
    With a provider that bridges calls (a real carrier) the call waits for the decision:
    `bridge` is told it, with the agent group's `address`."""

    live: LiveAnswers
    lines: DialerLines | None  # dialer passes only
    bridge: BridgingProvider | None = None
    address: str = ""


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """What every batch of a round's sweep shares."""

    key: PassKey
    pacer: Pacer
    calls: Calls | None  # live answers and dialer lines of a pass with agents
    final_codes: dict[str, list[tuple[str, str]]]  # result code → final groups (name, scope)


class NotStarted(Exception):
    """A contact given back untouched: the pass stopped while it waited for a line."""


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What every attempt of a batch shares, worked out once per batch, and what the
    batch collects: its ledger rows and the devices that opted out or bounced."""

    plan: RoundPlan
    provider: ChannelProvider
    start: int  # the cursor the batch starts from: its contacts are seqs past it
    try_number: int  # the round
    pass_channel: Channel
    rows: list[AttemptRow]
    key_prefix: str  # of the stable attempt key: sub-campaign, day, pass
    head: tuple[int, int, date, int]  # every row's sub-campaign, campaign, day, pass
    channel: str
    window: Window | None
    template: string.Template | None
    subject: string.Template | None
    agent_group: str | None  # a live answer waits for csm's decision (AttemptRequest)
    gate: BatchGate | None  # None: compliance checks off (benchmarks only)
    stopping: asyncio.Event  # set on pause or stop: no new contact is started
    opted_out: list[int] = field(default_factory=list)  # device ids that replied STOP
    bounced: list[int] = field(default_factory=list)  # e-mail device ids that hard-bounced
    leased: list[int] = field(default_factory=list)  # accounts this batch holds leases on

    @classmethod
    def of(
        cls,
        run: PassRun,
        plan: RoundPlan,
        start: int,
        gate: BatchGate | None,
        stopping: asyncio.Event,
    ) -> BatchContext:
        params = run.params
        definition = params.definition
        return cls(
            plan=plan,
            gate=gate,
            stopping=stopping,
            rows=[],
            provider=run.tools.channels.for_channel(definition.channel),
            start=start,
            try_number=plan.key.round,
            pass_channel=definition.channel,
            key_prefix=f"{params.sub_campaign_id}-{params.day:%Y%m%d}-{params.pass_number}-",
            head=(params.sub_campaign_id, params.campaign_id, params.day, params.pass_number),
            channel=definition.channel.value,
            window=definition.window,
            template=string.Template(definition.template) if definition.template else None,
            subject=string.Template(definition.subject) if definition.subject else None,
            agent_group=definition.agent_group,
        )

    def row(
        self, contact_id: int, device_id: int, result: str, reason: str | None, at: datetime
    ) -> AttemptRow:
        """A ledger row of this batch (device 0: a skip)."""
        return new_record(
            AttemptRow,
            (*self.head, contact_id, device_id, self.try_number, self.channel, result, reason, at),
        )

    def texts(self, contact: Contact) -> tuple[str | None, str | None]:
        """The contact's message and subject: the pass's templates over its attributes."""
        message = subject = None
        if self.template:
            message = self.template.safe_substitute(contact.attributes)
        if self.subject:
            subject = self.subject.safe_substitute(contact.attributes)
        return message, subject

    def request(
        self,
        contact: Contact,
        device: Device,
        local_hour: int,
        message: str | None,
        subject: str | None,
    ) -> AttemptRequest:
        """The provider's request for one device: ids, codes, the address, the texts and
        the hour on the contact's clock when it was checked."""
        try_number = self.try_number
        return AttemptRequest(
            attempt_key=f"{self.key_prefix}{contact.contact_id}-{device.device_id}-{try_number}",
            day=self.head[2],
            pass_number=self.head[3],
            contact_id=contact.contact_id,
            device_id=device.device_id,
            try_number=try_number,
            device_kind=device.kind,
            address=device.address,
            channel=self.pass_channel,
            local_hour=local_hour,
            message=message,
            subject=subject,
            agent_group=self.agent_group,
        )


async def attempt_batch(
    run: PassRun, batch: list[Contact], context: BatchContext, cursor: int
) -> set[int]:
    """Attempt `batch` in `concurrency` lanes, adding rows to `context`; stop taking
    contacts once its `stopping` is set. Returns the seqs of the contacts handled."""
    handled: set[int] = set()
    if not batch:
        return handled
    pending = iter(batch)
    lanes = min(run.params.definition.pacing.concurrency, len(batch))
    stopping = context.stopping

    async def lane() -> None:
        for number, contact in enumerate(pending):
            if stopping.is_set():
                return
            try:
                context.rows.extend(await attempt_contact(run, contact, context))
            except NotStarted:
                return  # stopping while waiting for a dialer line: resumed later
            handled.add(contact.seq)
            if number % 32 == 0:
                activity.heartbeat(cursor)  # lets a pause or stop reach us mid-batch

    await asyncio.gather(*(lane() for _ in range(lanes)))
    return handled


async def attempt_contact(
    run: PassRun, contact: Contact, context: BatchContext
) -> list[AttemptRow]:
    """One contact: the decision, then its devices in order until one reaches someone or
    a cap holds them. The hot path of a pass: no call it can do without."""
    clock, gate, channel, window = run.clock, context.gate, context.channel, context.window
    local = clock.local(contact.zone)
    reason = skip_reason(
        contact,
        channel=channel,
        window=window,
        window_time=clock.local(run.window_zone(contact)).time() if window else None,
        local=local,
        checks=gate,
    )
    if reason is not None:
        return [context.row(contact.contact_id, 0, "skipped", str(reason), clock.now())]
    message, subject = context.texts(contact)
    pacer, calls, provider = context.plan.pacer, context.plan.calls, context.provider
    rows: list[AttemptRow] = []
    hold = None
    for device in contact.devices:
        if gate is not None:
            hold = device_hold(gate, contact, device, channel=channel, at=clock.now())
            if hold is not None:
                if hold.per_device:
                    continue  # this number's own cap: the next device may still be tried
                break
        if pacer.interval:
            await pacer.wait()
        request = context.request(contact, device, local.hour, message, subject)
        if calls is None:  # no agents: straight to the provider
            try:
                result = (await provider.attempt(request)).result
            except ConnectionError:
                result = (await send_after_outage(provider, request)).result
        else:
            result = await call(run, context, request, first=not rows)
        at = clock.now()
        rows.append(context.row(contact.contact_id, device.device_id, result, None, at))
        if not tries_next_device(result):  # the contact is done: no later check to count for
            if result == "opted_out" and gate is not None:
                context.opted_out.append(device.device_id)
            return rows
        if gate is not None:  # the next device's cap check counts this attempt
            gate.attempted(contact.contact_id, at, channel, device.address, result)
            if result == "bounced":
                context.bounced.append(device.device_id)
    if hold is not None:  # a cap stopped the devices: say which
        assert gate is not None
        rows.append(
            context.row(contact.contact_id, 0, "skipped", gate.reason(hold.rule), clock.now())
        )
    return rows


async def call(run: PassRun, context: BatchContext, request: AttemptRequest, *, first: bool) -> str:
    """One attempt on a pass with agents: a dialer line first, and a live answer
    connected to an agent (or abandoned) after.

    A pause or stop ends the wait for a line only before the contact's first device
    (raising NotStarted): once a device was tried, the contact is finished.
    """
    calls = context.plan.calls
    assert calls is not None
    lines = calls.lines
    if lines is not None and not await lines.acquire(context.stopping if first else None):
        raise NotStarted
    result = UNKNOWN
    try:
        try:
            outcome = await context.provider.attempt(request)
        except ConnectionError:
            outcome = await send_after_outage(context.provider, request)
        result = outcome.result
        if result == LIVE and outcome.detail != DECIDED:  # DECIDED: by an earlier run
            params = run.params
            ref = CallRef(
                key=request.attempt_key,
                sub_campaign_id=params.sub_campaign_id,
                day=params.day,
                pass_number=params.pass_number,
                contact_id=request.contact_id,
            )
            result = await calls.live.answered(ref)
            if calls.bridge is not None:  # the call waits at the carrier for the decision
                address = calls.address if result == CONNECTED else ""
                await calls.bridge.connect(request, address, result)
    finally:
        if lines is not None:
            lines.release(result)
    return result


async def calls_for(run: PassRun, connection: Connection) -> Calls | None:
    """The live answers (and, on a dialer pass, the lines) of a pass with agents."""
    definition = run.params.definition
    group = definition.agent_group
    if group is None:
        return None
    hold_queue = run.tools.hold_queue
    provider = run.tools.channels.for_channel(definition.channel)
    bridge: BridgingProvider | None = None
    address = ""
    if hasattr(provider, "connect"):
        bridge = provider  # type: ignore[assignment]
        address = bridge.agent_address(group, await group_address(connection, group))
    live = LiveAnswers(
        queue=hold_queue,
        group=group,
        channel=definition.channel,
        hold_seconds=definition.pacing.hold.total_seconds(),
        heartbeat=activity.heartbeat,
    )
    if definition.channel is not Channel.DIALER:
        return Calls(live, None, bridge, address)
    answered, abandoned = await abandon_history(connection, run.params.campaign_id)
    lines = DialerLines(
        desk=hold_queue.desk,
        group=group,
        predictive=definition.pacing.mode == "predictive",
        abandon_limit=definition.pacing.abandon_limit,
        live=answered,
        abandoned=abandoned,
        heartbeat=activity.heartbeat,
        note=note,
    )
    return Calls(live, lines, bridge, address)


async def send_after_outage(provider: ChannelProvider, request: AttemptRequest) -> AttemptOutcome:
    """A provider that could not be reached (nothing was sent): try again, heartbeating,
    for up to PROVIDER_OUTAGE_LIMIT; then the activity fails and Temporal retries it."""
    waited = 0.0
    delay = 0.5
    while True:
        activity.heartbeat()
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 5.0)
        try:
            return await provider.attempt(request)
        except ConnectionError:
            if waited >= PROVIDER_OUTAGE_LIMIT.total_seconds():
                raise
