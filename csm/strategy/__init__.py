"""Strategy files: TOML in, a validated StrategyDefinition out (see docs/strategy.md)."""

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
