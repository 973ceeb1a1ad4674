"""The interface every channel provider implements, real or simulated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from csm.vocabulary import Channel


@dataclass(slots=True)
class AttemptRequest:
    """One try of one device. `address` is personal data: it never leaves the activity.

    Built once per attempt and never changed after (providers only read it). Not a frozen
    dataclass: its `__init__` sets twelve fields through `object.__setattr__`, 1.5 µs
    against 0.5 µs, a tenth of a zero-latency pass's time per contact.
    """

    attempt_key: str  # stable across retries: sub-campaign, day, pass, contact, device, try
    day: date  # the campaign day and pass of the key: a simulated world answers each
    pass_number: int  # pass and day afresh (csm.channels.simulator)
    contact_id: int
    device_id: int
    try_number: int
    device_kind: str
    address: str
    channel: Channel
    local_hour: int
    message: str | None = None
    subject: str | None = None
    #: The pass's agent group: a live answer waits for csm's decision (a provider that
    #: bridges calls, `BridgingProvider`, holds the call until `connect` tells it).
    agent_group: str | None = None


#: An outcome's detail saying the live answer was decided before (by an earlier run of
#: the same attempt key): the pass must not give it to an agent again.
DECIDED = "decided"


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    result: str  # a result code (csm.vocabulary)
    detail: str = ""  # e.g. the SMTP reply code, or DECIDED; never personal data


class ChannelProvider(Protocol):
    """Sends attempts on one or more channels."""

    async def attempt(self, request: AttemptRequest) -> AttemptOutcome: ...

    async def close(self) -> None: ...


class BridgingProvider(ChannelProvider, Protocol):
    """A provider whose calls a live answer can be bridged on (a real carrier): the call
    waits while the pass decides, then `connect` says where it goes."""

    async def connect(self, request: AttemptRequest, address: str, result: str) -> None:
        """Bridge the live answer of `request` to `address` ('' : not connected, the
        message plays); `result` is what the pass records for it."""
        ...

    def agent_address(self, group: str, stored: str | None) -> str:
        """Where the group's calls are bridged: its stored address, else the default."""
        ...


@dataclass
class Channels:
    """The provider for each channel, as the worker was configured."""

    providers: dict[Channel, ChannelProvider] = field(default_factory=dict)

    def for_channel(self, channel: Channel) -> ChannelProvider:
        try:
            return self.providers[channel]
        except KeyError:
            raise LookupError(f"no provider configured for the {channel.value} channel") from None

    async def close(self) -> None:
        for provider in {id(p): p for p in self.providers.values()}.values():
            await provider.close()
