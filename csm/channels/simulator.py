"""A seeded simulator of carriers, phones, answering machines, people and agents.

Outcomes are drawn from configurable distributions per device kind and local
hour, deterministically from the seed and the attempt: its day, pass, contact,
device, try and channel (the parts of the attempt key but the sub-campaign).
Each attempt draws afresh, so a retry pass or the next day reaches some of the
people an earlier pass missed, while the same attempt always draws the same
result: tests can ask the simulator what a given attempt will return, and a
batch worked again after a crash draws what it drew before.

With a journal the simulated carrier behaves like a provider that honours
idempotency keys: it writes each attempt it places to an append-only file
before answering, and an attempt whose key it has seen (from any worker, before
any crash) gets the recorded answer without being placed again. A pass can then
re-work the batch a crash left in flight instead of recording it `unknown`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from csm.channels.base import AttemptOutcome, AttemptRequest
from csm.vocabulary import Channel

Distribution = tuple[tuple[str, float], ...]

#: Voice outcomes by device kind (weights sum to 1).
VOICE_DAYTIME: dict[str, Distribution] = {
    "wireless": (
        ("delivered_person", 0.22),
        ("delivered_machine", 0.30),
        ("no_answer", 0.25),
        ("busy", 0.08),
        ("hang_up_on_machine", 0.05),
        ("undelivered_machine", 0.04),
        ("not_connected", 0.03),
        ("bad_device", 0.03),
    ),
    "landline": (
        ("delivered_person", 0.15),
        ("delivered_machine", 0.35),
        ("no_answer", 0.30),
        ("busy", 0.10),
        ("hang_up_on_machine", 0.04),
        ("undelivered_machine", 0.02),
        ("not_connected", 0.02),
        ("bad_device", 0.02),
    ),
}
#: Evenings reach more people.
VOICE_EVENING: dict[str, Distribution] = {
    "wireless": (
        ("delivered_person", 0.35),
        ("delivered_machine", 0.25),
        ("no_answer", 0.20),
        ("busy", 0.08),
        ("hang_up_on_machine", 0.05),
        ("undelivered_machine", 0.03),
        ("not_connected", 0.02),
        ("bad_device", 0.02),
    ),
    "landline": (
        ("delivered_person", 0.30),
        ("delivered_machine", 0.30),
        ("no_answer", 0.22),
        ("busy", 0.10),
        ("hang_up_on_machine", 0.04),
        ("undelivered_machine", 0.02),
        ("not_connected", 0.01),
        ("bad_device", 0.01),
    ),
}
SMS: Distribution = (("success", 0.93), ("failed", 0.05), ("opted_out", 0.02))
#: What the carrier reports on a dialer call; a live answer (`delivered_person`) then goes
#: to an agent or is abandoned (csm.dialer), which the carrier does not decide.
DIALER: Distribution = (
    ("delivered_person", 0.29),
    ("delivered_machine", 0.30),
    ("no_answer", 0.30),
    ("busy", 0.08),
    ("bad_device", 0.03),
)
_CHANNEL_SALT = {Channel.VOICE: 1, Channel.DIALER: 2, Channel.SMS: 3, Channel.EMAIL: 4}
_MASK = (1 << 64) - 1


def _mix(*numbers: int) -> float:
    """A fast, well-spread hash of integers to [0, 1) (splitmix64 rounds)."""
    value = 0x9E3779B97F4A7C15
    for number in numbers:
        value = (value ^ (number & _MASK)) & _MASK
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
        value ^= value >> 31
    return value / 2**64


def _draw(distribution: Distribution, roll: float) -> str:
    total = 0.0
    for code, weight in distribution:
        total += weight
        if roll < total:
            return code
    return distribution[-1][0]


@dataclass
class SimulatorConfig:
    seed: int = 1
    latency_seconds: float = 0.0  # per attempt; 0 = the zero-latency simulator
    voice_daytime: Mapping[str, Distribution] = field(default_factory=lambda: VOICE_DAYTIME)
    voice_evening: Mapping[str, Distribution] = field(default_factory=lambda: VOICE_EVENING)
    evening_from_hour: int = 17
    sms: Distribution = SMS
    dialer: Distribution = DIALER
    journal: Path | None = None  # set: idempotent by attempt key, across processes and crashes


class SimulatedCarrier:
    """Voice, dialer and SMS attempts, answered by the simulated world."""

    def __init__(self, config: SimulatorConfig | None = None):
        self.config = config or SimulatorConfig()
        self._journal: int | None = None  # file descriptor, opened on first use
        self._placed: dict[str, str] = {}  # attempt key → result, as the journal records them

    @property
    def idempotent(self) -> bool:
        """True when a repeated attempt key is answered from the record, not placed again."""
        return self.config.journal is not None

    def outcome_for(self, request: AttemptRequest) -> str:
        """The result this attempt gets: a pure function of the seed, the attempt and its hour.

        The attempt is its key's day, pass, contact, device and try (and the channel), so
        each pass and each day draws afresh, and a batch worked again after a crash draws
        what it drew before. The sub-campaign is left out on purpose: two sub-campaigns
        working the same list in the same pass of a day meet the same world, which lets
        bench/workflow_per_contact.py compare two designs row by row.
        """
        config = self.config
        roll = _mix(
            config.seed,
            request.day.toordinal(),
            request.pass_number,
            request.contact_id,
            request.device_id,
            request.try_number,
            _CHANNEL_SALT[request.channel],
        )
        if request.channel is Channel.SMS:
            return _draw(config.sms, roll)
        if request.channel is Channel.DIALER:
            return _draw(config.dialer, roll)
        table = (
            config.voice_evening
            if request.local_hour >= config.evening_from_hour
            else (config.voice_daytime)
        )
        return _draw(table.get(request.device_kind, table["landline"]), roll)

    async def attempt(self, request: AttemptRequest) -> AttemptOutcome:
        if self.config.journal is not None:
            return await self._attempt_once(request)
        if self.config.latency_seconds:
            await asyncio.sleep(self.config.latency_seconds)
        return AttemptOutcome(self.outcome_for(request))

    async def _attempt_once(self, request: AttemptRequest) -> AttemptOutcome:
        journal = self._journal if self._journal is not None else self._open_journal()
        known = self._placed.get(request.attempt_key)
        if known is not None:
            return AttemptOutcome(known, "repeat")
        if self.config.latency_seconds:
            await asyncio.sleep(self.config.latency_seconds)
        known = self._placed.get(request.attempt_key)  # placed by a concurrent call meanwhile
        if known is not None:
            return AttemptOutcome(known, "repeat")
        result = self.outcome_for(request)
        # One write(2) of a short line with O_APPEND: whole in the file even if the process is
        # killed right after, and never interleaved with another process's line.
        os.write(journal, f"{request.attempt_key}\t{result}\n".encode())
        self._placed[request.attempt_key] = result
        return AttemptOutcome(result)

    def _open_journal(self) -> int:
        """Open the journal for appending and learn every attempt it records."""
        path = self.config.journal
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._journal = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with path.open() as lines:
            for line in lines:
                key, _, result = line.rstrip("\n").partition("\t")
                if result:
                    self._placed[key] = result
        return self._journal

    def placed(self) -> dict[str, str]:
        """The journal as the carrier knows it: attempt key → result."""
        return dict(self._placed)

    async def close(self) -> None:
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
