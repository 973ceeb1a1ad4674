"""Checking a parsed filter against the language's fields and a strategy's response groups.

Parsing proves the shape; checking proves the meaning: known fields, values of
the right type, known result codes and group names. Both report the column.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from csm.filters import ast as syntax
from csm.filters.errors import FilterError
from csm.filters.fields import ATTRIBUTE_PREFIX, FIELDS, FUNCTIONS, FieldType
from csm.filters.parser import parse_filter
from csm.vocabulary import RESULT_CODES

ORDERING_OPS = ("<", "<=", ">", ">=")


def _did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def field_type(name: syntax.Name) -> FieldType:
    """The type of a field reference, or a FilterError naming the closest known field."""
    if name.parts[0] == ATTRIBUTE_PREFIX:
        if len(name.parts) != 2:
            raise FilterError(
                f"'{name.text}' must name one attribute, like attributes.balance", name.column
            )
        return FieldType.ATTRIBUTE
    spec = FIELDS.get(name.text)
    if spec is None:
        choices = [*FIELDS, f"{ATTRIBUTE_PREFIX}.{name.parts[-1]}"]
        raise FilterError(
            f"unknown field '{name.text}'", name.column, _did_you_mean(name.text, choices)
        )
    return spec.type


class _Checker:
    def __init__(self, groups: Mapping[str, Sequence[str]]):
        self.groups = groups

    def node(self, node: syntax.Node) -> None:
        match node:
            case syntax.Everyone():
                return
            case syntax.And(operands) | syntax.Or(operands):
                for operand in operands:
                    self.node(operand)
            case syntax.Not(operand):
                self.node(operand)
            case syntax.Truth(syntax.Call() as call):
                self.call(call)
            case syntax.Truth(syntax.Name() as name):
                kind = field_type(name)
                if kind not in (FieldType.BOOL, FieldType.ATTRIBUTE):
                    raise FilterError(
                        f"'{name.text}' is not a yes/no field",
                        name.column,
                        "compare it with a value, e.g. attempts = 0",
                    )
            case syntax.Compare(left, op, right):
                self.compare(left, op, right)
            case syntax.InList(left, values, _):
                for value in values:
                    self.compare(left, "=", value)
            case syntax.Like(left, _, _):
                kind = field_type(left)
                if kind not in (FieldType.TEXT, FieldType.ATTRIBUTE):
                    raise FilterError(f"'like' needs a text field, not '{left.text}'", left.column)
            case syntax.IsNull(left, _):
                if field_type(left) in (FieldType.COUNT, FieldType.BOOL):
                    raise FilterError(f"'{left.text}' is never null", left.column)

    def compare(self, left: syntax.Name, op: str, right: syntax.Literal) -> None:
        kind = field_type(left)
        value = right.value
        if kind is FieldType.COUNT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise FilterError(
                    f"'{left.text}' is a whole number; compare it with one", right.column
                )
        elif kind is FieldType.BOOL:
            if not isinstance(value, bool) or op not in ("=", "!="):
                raise FilterError(
                    f"'{left.text}' is yes/no: use it alone, with 'not', or '= true' / '= false'",
                    right.column,
                )
        elif kind in (FieldType.RESULT, FieldType.GROUP, FieldType.TEXT):
            if not isinstance(value, str):
                raise FilterError(f"'{left.text}' is text; quote the value", right.column)
            if kind is not FieldType.TEXT and op in ORDERING_OPS:
                raise FilterError(f"'{left.text}' cannot be ordered; use =, != or in", right.column)
            if kind is FieldType.RESULT and value not in RESULT_CODES:
                raise FilterError(
                    f"unknown result code '{value}'",
                    right.column,
                    _did_you_mean(value, sorted(RESULT_CODES)),
                )
            if kind is FieldType.GROUP:
                self.group(value, right.column)

    def call(self, call: syntax.Call) -> None:
        if call.name not in FUNCTIONS:
            raise FilterError(
                f"unknown function '{call.name}'",
                call.column,
                _did_you_mean(call.name, list(FUNCTIONS)),
            )
        if len(call.args) != 1 or not isinstance(call.args[0].value, str):
            raise FilterError(
                f"{call.name}() takes one response group name, e.g. {call.name}('reached')",
                call.column,
            )
        self.group(call.args[0].value, call.args[0].column)

    def group(self, name: str, column: int) -> None:
        if name not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none defined"
            hint = _did_you_mean(name, list(self.groups)) or f"response groups: {known}"
            raise FilterError(f"unknown response group '{name}'", column, hint)


def check_node(node: syntax.Node, response_groups: Mapping[str, Sequence[str]]) -> None:
    _Checker(response_groups).node(node)


def check_filter(text: str, response_groups: Mapping[str, Sequence[str]]) -> syntax.Node:
    """Parse and check `text` against the strategy's response groups; the checked tree.

    Raises FilterError (with the column) for anything the language does not allow.
    """
    node = parse_filter(text)
    check_node(node, response_groups)
    return node
