"""A selected contact as the pass reads it: named records, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

#: A NamedTuple built from a tuple of its values, as its `_make` does without the length
#: check: a pass builds one per device and per ledger row, the hot path, where the
#: NamedTuple's own constructor costs twice as much. `new_record(Device, (id, kind, address))`.
new_record = tuple.__new__


class Device(NamedTuple):
    """One device of a contact, in the pass's try order."""

    device_id: int
    kind: str
    address: str


@dataclass(slots=True)
class Contact:
    """A contact of a batch: what its checks and attempts need, read once per batch."""

    seq: int
    contact_id: int
    zone: ZoneInfo
    consented: bool
    devices: list[Device]  # in try order
    attributes: dict = field(default_factory=dict)
    suppressed: bool = False  # the account is on a suppression list
    suppressed_devices: int = 0  # devices left out because they are suppressed
    state: str | None = None  # the `state` attribute: per-state hours and caps
