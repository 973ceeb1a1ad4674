"""Compiling a checked filter to a SQLAlchemy boolean expression with bound parameters.

Semantics: every predicate is two-valued. A comparison with a missing value
(no attempt yet, an attribute the contact lacks) is false, so its negation
(`!=`, `not in`, `not like`, `not (...)`) is true. Attribute values compare as
JSON: numbers as numbers, text and ISO dates as text, across types never equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, and_, cast, false, func, literal, not_, or_, true
from sqlalchemy.dialects.postgresql import JSONB

from csm.filters import ast as syntax
from csm.filters.check import field_type
from csm.filters.fields import FieldType


@dataclass(frozen=True)
class FilterScope:
    """The columns a filter reads, supplied by the query that selects contacts."""

    fields: Mapping[str, ColumnElement]  # attempts, last_result, timezone, consent.sms, ...
    attributes: ColumnElement  # the contact's JSONB attributes
    ever: Callable[[Sequence[str]], ColumnElement[bool]]  # any attempt with one of these codes


_OPS: dict[str, Callable[[ColumnElement, ColumnElement], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _definite(expression: ColumnElement[bool]) -> ColumnElement[bool]:
    """NULL (a missing value) becomes false, so that NOT and OR stay two-valued."""
    return func.coalesce(expression, false())


class _Compiler:
    def __init__(self, scope: FilterScope, groups: Mapping[str, Sequence[str]]):
        self.scope = scope
        self.groups = groups

    def node(self, node: syntax.Node) -> ColumnElement[bool]:
        match node:
            case syntax.Everyone():
                return true()
            case syntax.And(operands):
                return and_(*(self.node(o) for o in operands))
            case syntax.Or(operands):
                return or_(*(self.node(o) for o in operands))
            case syntax.Not(operand):
                return not_(self.node(operand))
            case syntax.Truth(syntax.Call(_, args, _)):
                return self.scope.ever(list(self.groups[str(args[0].value)]))
            case syntax.Truth(syntax.Name() as name):
                return self.truth(name)
            case syntax.Compare(left, "!=", right):
                return not_(self.compare(left, "=", right))
            case syntax.Compare(left, op, right):
                return self.compare(left, op, right)
            case syntax.InList(left, values, negated):
                matched = or_(*(self.compare(left, "=", v) for v in values))
                return not_(matched) if negated else matched
            case syntax.Like(left, pattern, negated):
                matched = _definite(self.text_of(left).like(literal(pattern.value)))
                return not_(matched) if negated else matched
            case syntax.IsNull(left, negated):
                missing = self.is_missing(left)
                return not_(missing) if negated else missing
        raise AssertionError(f"unchecked filter node {node!r}")

    def truth(self, name: syntax.Name) -> ColumnElement[bool]:
        if field_type(name) is FieldType.ATTRIBUTE:
            return _definite(self.attribute(name) == cast(literal("true"), JSONB))
        return _definite(self.scope.fields[name.text])

    def compare(self, left: syntax.Name, op: str, right: syntax.Literal) -> ColumnElement[bool]:
        kind = field_type(left)
        if kind is FieldType.ATTRIBUTE:
            value = cast(literal(right.value, JSONB), JSONB)
            return _definite(_OPS[op](self.attribute(left), value))
        if kind is FieldType.GROUP:
            codes = list(self.groups[str(right.value)])
            return _definite(self.scope.fields["last_result"].in_(codes))
        return _definite(_OPS[op](self.scope.fields[left.text], literal(right.value)))

    def text_of(self, name: syntax.Name) -> ColumnElement:
        if field_type(name) is FieldType.ATTRIBUTE:
            return self.scope.attributes.op("->>", return_type=Text)(literal(name.parts[1]))
        return self.scope.fields[name.text]

    def attribute(self, name: syntax.Name) -> ColumnElement:
        return self.scope.attributes.op("->")(literal(name.parts[1]))

    def is_missing(self, name: syntax.Name) -> ColumnElement[bool]:
        kind = field_type(name)
        if kind is FieldType.ATTRIBUTE:
            value = self.attribute(name)
            return or_(value.is_(None), value == cast(literal("null"), JSONB))
        column = self.scope.fields["last_result" if kind is FieldType.GROUP else name.text]
        return column.is_(None)


def compile_filter(
    node: syntax.Node, scope: FilterScope, response_groups: Mapping[str, Sequence[str]]
) -> ColumnElement[bool]:
    """SQL for a checked filter tree (see check_filter); every value is a bound parameter."""
    return _Compiler(scope, response_groups).node(node)
