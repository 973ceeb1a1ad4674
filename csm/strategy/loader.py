"""Strategy file (TOML) → StrategyDefinition, with every problem reported at once.

A manager fixing a strategy file should see all its mistakes in one run, each
with where it is ("pass 2 'retry no answers': filter: ..."), not fix them one
error at a time. So the loader collects pydantic's field errors and the
cross-pass checks together, and words them for people, not for Python.
"""

from __future__ import annotations

import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from csm.errors import CsmError
from csm.strategy.checks import Loc, cross_check, raw_groups
from csm.strategy.model import CROSS_CHECKED, StrategyDefinition
from csm.strategy.values import check_text, did_you_mean, with_hint


@dataclass(frozen=True)
class StrategyIssue:
    """One problem in a strategy file: where it is, and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class StrategyError(CsmError):
    """A strategy file with problems; `issues` holds all of them, in file order."""

    def __init__(self, issues: list[StrategyIssue], source: str = "<strategy>"):
        self.issues = issues
        self.source = source
        if len(issues) == 1:
            text = f"{source}: {issues[0]}"
        else:
            text = f"{source}: {len(issues)} problems:" + "".join(f"\n  {i}" for i in issues)
        super().__init__(text)


def load_strategy(text: str, *, source: str = "<strategy>") -> StrategyDefinition:
    """Parse and validate strategy TOML; raise StrategyError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise StrategyError([_syntax_issue(err)], source) from None
    return validate_strategy(data, source=source)


def load_strategy_file(path: str | Path) -> tuple[StrategyDefinition, str]:
    """Read and validate a strategy file; returns the definition and the text as written.

    Only a regular file of at most 1 MiB is read (csm.files): a directory, a device
    or a huge file is one clear error.
    """
    from csm.files import read_small_text

    path = Path(path)
    text = read_small_text(path, f"strategy file {str(path)!r}")
    return load_strategy(text, source=str(path)), text


def validate_strategy(data: Mapping[str, Any], *, source: str = "<strategy>") -> StrategyDefinition:
    """Validate an already parsed strategy document (a TOML or JSON object)."""
    problems: list[tuple[Loc, str]] = []
    passes = data.get("passes")
    if isinstance(passes, list):
        groups = raw_groups(data.get("response_groups"))
        problems += [(p.loc, p.message) for p in cross_check(passes, groups)]
    definition: StrategyDefinition | None = None
    try:
        definition = StrategyDefinition.model_validate(data, context={CROSS_CHECKED: True})
    except ValidationError as err:
        problems += [_explain(error) for error in err.errors() if not _is_noise(error)]
    # A control character is reported alone where it is: the other checks of that value
    # would only say the same in other words ("unknown field", "unknown time zone").
    control = _control_characters(data)
    if control:
        problems = [*control.items(), *(p for p in problems if p[0] not in control)]
    if problems:
        problems.sort(key=lambda problem: _order(problem[0]))
        raise StrategyError([_issue(loc, message, data) for loc, message in problems], source)
    assert definition is not None
    return definition


def _control_characters(value: object, loc: Loc = ()) -> dict[Loc, str]:
    """Every string value holding NUL or another control character (tab and newline are
    fine), by location: PostgreSQL cannot store NUL in jsonb, and the others are mistakes.

    A check of the whole document, so a string key added to the model later is covered
    too; the model's own checks are stricter where it matters (names are one line).
    """
    found: dict[Loc, str] = {}
    if isinstance(value, str):
        try:
            check_text(value)
        except ValueError as err:
            found[loc] = str(err)
    elif isinstance(value, Mapping):
        known = _keys_at(loc)  # an unknown key is reported as such, not its value too
        for key, item in value.items():
            if not known or key in known:
                found |= _control_characters(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found |= _control_characters(item, (*loc, index))
    return found


# --- wording ------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _syntax_issue(err: tomllib.TOMLDecodeError) -> StrategyIssue:
    message = str(err)
    match = _TOML_POSITION.search(message)
    if match is None:
        return StrategyIssue("TOML syntax", message)
    line, column = match.groups()
    return StrategyIssue(
        f"line {line}, column {column}", f"TOML syntax: {message[: match.start()]}"
    )


def _is_noise(error: Any) -> bool:
    """Follow-on errors that only repeat another one (a default that depends on a bad field)."""
    return error["type"] == "default_factory_not_called"


def _explain(error: Any) -> tuple[Loc, str]:
    """A pydantic error as (location, message a manager understands)."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = did_you_mean(key, _keys_at(loc[:-1])) or _belongs_in(key, loc[:-1])
        return loc[:-1], with_hint(f"unknown key {key!r}", hint)
    if kind == "missing":
        return loc, "required key is missing"
    if kind in ("enum", "literal_error"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return loc, with_hint(
            f"{value!r} is not one of {', '.join(choices)}", did_you_mean(value, choices)
        )
    if kind == "value_error":
        return loc, str(ctx.get("error", error["msg"]))
    if loc == ("passes",) and kind in ("list_type", "too_short"):
        return loc, "a strategy needs at least one pass: write each pass under [[passes]]"
    if kind in ("model_type", "dict_type"):
        return loc, f"expected a table ({{ key = value, ... }}), got {value!r}"
    if kind == "too_short":
        return loc, f"needs at least {ctx.get('min_length', 1)} item(s)"
    message = error["msg"]
    if isinstance(value, str | int | float | bool):
        message += f", got {value!r}"
    return loc, message[0].lower() + message[1:]


def _order(loc: Loc) -> tuple[int, int]:
    """File order: timezone, response groups, then passes by number."""
    sections = {"timezone": 0, "response_groups": 1, "passes": 2}
    if not loc:
        return (-1, 0)
    index = loc[1] if loc[0] == "passes" and len(loc) > 1 and isinstance(loc[1], int) else -1
    return (sections.get(str(loc[0]), 3), index)


def _issue(loc: Loc, message: str, data: Mapping[str, Any]) -> StrategyIssue:
    return StrategyIssue(_location(loc, data), message)


def _location(loc: Loc, data: Mapping[str, Any]) -> str:
    """("passes", 1, "window", "start") → "pass 2 'retry no answers': window.start"."""
    if not loc:
        return "top level"
    prefix = ""
    rest = loc
    if loc[0] == "passes" and len(loc) > 1 and isinstance(loc[1], int):
        index = loc[1]
        prefix = f"pass {index + 1}"
        passes = data.get("passes")
        raw = passes[index] if isinstance(passes, list) and index < len(passes) else None
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if isinstance(name, str) and name.strip():
            prefix += f" {name.strip()!r}"
        rest = loc[2:]
    path = ""
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{prefix}: {path}" if prefix and path else (prefix or path)


def _keys_at(loc: Loc) -> list[str]:
    """The keys the model allows at `loc`, for "did you mean" hints on unknown keys."""
    annotation: Any = StrategyDefinition
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _belongs_in(key: str, loc: Loc) -> str | None:
    """A hint for a key written one level too high: per_minute → "it belongs in pacing"."""
    for table in _keys_at(loc):
        if key in _keys_at((*loc, table)):
            return f"it belongs in {table}, like {table} = {{ {key} = ... }}"
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and `X | None` down to X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
