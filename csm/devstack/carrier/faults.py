"""Faults the carrier injects on request, so tests can prove csm survives a bad carrier.

Set at start (command-line flags) and at run time (`POST /_carrier/faults`). Rates are
fractions in [0, 1] drawn from a seeded generator, so a seeded run injects the same
faults in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

#: The share of placements whose final status is sent early when `reorder` is on.
REORDER_SHARE = 0.5

RATES = ("error_rate", "throttle_rate", "lose_callbacks", "repeat_callbacks")


class FaultError(ValueError):
    """A fault setting that makes no sense (says which and why)."""


@dataclass
class Faults:
    error_rate: float = 0.0  # share of Calls/Messages POSTs answered 500 (nothing placed)
    throttle_rate: float = 0.0  # share of those POSTs answered 429 (nothing placed)
    lose_callbacks: float = 0.0  # share of status callbacks never sent
    repeat_callbacks: float = 0.0  # share of status callbacks sent twice
    reorder: bool = False  # send some placements' final status before their ringing/sent
    seed: int = 1
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in RATES:
            _check_rate(name, getattr(self, name))
        self._rng = random.Random(self.seed)

    def update(self, changes: Mapping[str, object]) -> None:
        """Apply a `POST /_carrier/faults` body: any subset of the settings, checked first."""
        known = {f.name for f in fields(self) if not f.name.startswith("_") and f.name != "seed"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultError(
                f"unknown fault {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        checked: dict[str, object] = {}
        for name, value in changes.items():
            if name == "reorder":
                if not isinstance(value, bool):
                    raise FaultError(f"reorder must be true or false, not {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise FaultError(f"{name} must be a number in [0, 1], not {value!r}")
                _check_rate(name, float(value))
                value = float(value)
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in (*RATES, "reorder")}

    def _hit(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def error(self) -> bool:
        return self._hit(self.error_rate)

    def throttle(self) -> bool:
        return self._hit(self.throttle_rate)

    def lose(self) -> bool:
        return self._hit(self.lose_callbacks)

    def repeat(self) -> bool:
        return self._hit(self.repeat_callbacks)

    def reordered(self) -> bool:
        return self.reorder and self._rng.random() < REORDER_SHARE


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise FaultError(f"{name} must be a fraction in [0, 1], not {value}")
