"""Strategy files: TOML in, a validated StrategyDefinition out (see docs/strategy.md).

The names below load on first use (PEP 562), so importing a light submodule such as
`csm.strategy.durations` does not pay for pydantic models and the TOML loader: the CLI
imports it at start-up for every command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from csm.strategy.loader import (
        StrategyError,
        StrategyIssue,
        load_strategy,
        load_strategy_file,
        validate_strategy,
    )
    from csm.strategy.model import (
        Pacing,
        PassDefinition,
        ResponseGroupDefinition,
        Retries,
        StrategyDefinition,
        UnknownPassError,
        Window,
    )

_HOMES = {
    "StrategyError": "csm.strategy.loader",
    "StrategyIssue": "csm.strategy.loader",
    "load_strategy": "csm.strategy.loader",
    "load_strategy_file": "csm.strategy.loader",
    "validate_strategy": "csm.strategy.loader",
    "Pacing": "csm.strategy.model",
    "PassDefinition": "csm.strategy.model",
    "ResponseGroupDefinition": "csm.strategy.model",
    "Retries": "csm.strategy.model",
    "StrategyDefinition": "csm.strategy.model",
    "UnknownPassError": "csm.strategy.model",
    "Window": "csm.strategy.model",
}

__all__ = [
    "Pacing",
    "PassDefinition",
    "ResponseGroupDefinition",
    "Retries",
    "StrategyDefinition",
    "StrategyError",
    "StrategyIssue",
    "UnknownPassError",
    "Window",
    "load_strategy",
    "load_strategy_file",
    "validate_strategy",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its home module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
