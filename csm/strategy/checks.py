"""Checks that span passes: unique names, `after` and `source` on the first pass, filters.

They work on plain mappings so the loader can run them on the raw TOML even
when some fields are invalid: a file with a bad window AND a bad filter
reports both at once. The model runs the same checks on validated passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from csm.filters import FilterError, check_filter

#: A location inside a strategy document, as pydantic writes it: ("passes", 1, "filter").
Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


def cross_check(
    passes: Sequence[Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[Problem]:
    """Problems between passes, and filters checked against the strategy's response groups.

    `passes` are mappings with (maybe) `name`, `source`, `after` and `filter`;
    values of the wrong type are skipped here (field validation reports them).
    """
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(passes):
        if not isinstance(raw, Mapping):
            continue
        name = raw.get("name")
        if isinstance(name, str) and name.strip():
            key = name.strip().casefold()
            if key in seen:
                problems.append(
                    Problem(
                        (*_at(index), "name"),
                        f"duplicate pass name {name.strip()!r} (pass {seen[key] + 1} has it)",
                    )
                )
            else:
                seen[key] = index
        if index == 0 and raw.get("after") is not None:
            problems.append(
                Problem(
                    (*_at(index), "after"),
                    "the first pass has no previous pass to follow: remove `after` "
                    "(a `window` sets when it starts)",
                )
            )
        if index == 0 and raw.get("source") == "previous":
            problems.append(
                Problem(
                    (*_at(index), "source"),
                    'the first pass has no previous pass: use source = "all"',
                )
            )
        if index == 0 and raw.get("alongside") is True:
            problems.append(
                Problem(
                    (*_at(index), "alongside"),
                    "the first pass has no previous pass to run alongside",
                )
            )
        text = raw.get("filter")
        if isinstance(text, str):
            try:
                check_filter(text, groups)
            except FilterError as err:
                problems.append(Problem((*_at(index), "filter"), str(err)))
    return problems


def _at(index: int) -> Loc:
    return ("passes", index)


def raw_groups(data: object) -> dict[str, list[str]]:
    """Best-effort name → codes of a raw `response_groups` table, for checking filters.

    Malformed groups keep their name, so a filter naming them is not reported
    twice (the group's own problem is reported where it is).
    """
    if not isinstance(data, Mapping):
        return {}
    groups: dict[str, list[str]] = {}
    for name, group in data.items():
        codes = group.get("codes") if isinstance(group, Mapping) else None
        groups[str(name)] = (
            [code for code in codes if isinstance(code, str)] if isinstance(codes, list) else []
        )
    return groups
