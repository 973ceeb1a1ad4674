"""The filter language's syntax tree: plain frozen dataclasses, each with its 1-based column."""

from __future__ import annotations

from dataclasses import dataclass

Value = str | int | float | bool


@dataclass(frozen=True)
class Name:
    """A field reference: `attempts`, `consent.sms`, `attributes.balance`."""

    parts: tuple[str, ...]
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    value: Value
    column: int


@dataclass(frozen=True)
class Call:
    """A function of the language, e.g. `ever('reached')`."""

    name: str
    args: tuple[Literal, ...]
    column: int


@dataclass(frozen=True)
class Compare:
    left: Name
    op: str  # = != < <= > >=
    right: Literal


@dataclass(frozen=True)
class InList:
    left: Name
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    left: Name
    pattern: Literal
    negated: bool


@dataclass(frozen=True)
class IsNull:
    left: Name
    negated: bool


@dataclass(frozen=True)
class Truth:
    """A boolean used on its own: `has_wireless`, `consent.sms`, `ever('reached')`."""

    operand: Name | Call


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Everyone:
    """The empty filter."""


Node = Compare | InList | Like | IsNull | Truth | Not | And | Or | Everyone
