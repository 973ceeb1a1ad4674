"""Typed cells: yes/no flags, numbers, dates, and the CSV-injection check on text.

Each parser takes a stripped, non-empty cell and returns the value to store,
or raises CellError with a reason that names the problem but not the value
(reasons end up on a terminal and in reports; values stay in the files).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})

#: A decimal number as PostgreSQL's `numeric` and JSON both accept it (after a leading + is
#: dropped): no thousands separators, no inf/nan, no hex.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
#: Longer digit strings are identifiers, not quantities (and would overflow `numeric`).
MAX_NUMBER_LENGTH = 64
_INTEGER = re.compile(r"[+-]?\d+")

#: First characters that make spreadsheet programs evaluate a cell (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class CellError(ValueError):
    """A cell that cannot be read as its column's type."""


def parse_flag(cell: str) -> bool:
    """true/false, yes/no, y/n, 1/0, t/f, in any case."""
    word = cell.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError("not a yes/no value (use true/false, yes/no, y/n or 1/0)")


def is_number(cell: str) -> bool:
    return len(cell) <= MAX_NUMBER_LENGTH and NUMBER.fullmatch(cell) is not None


def parse_number(cell: str) -> int | float:
    """An integer stays an integer (exact, however long); anything else is a finite float."""
    if not is_number(cell):
        raise CellError("not a number")
    if _INTEGER.fullmatch(cell):
        return int(cell)
    value = float(cell)
    if not math.isfinite(value):
        raise CellError("number out of range")
    return value


def parse_date(cell: str, date_format: str | None) -> str:
    """An ISO date (YYYY-MM-DD), read as ISO or with the column's strptime format."""
    try:
        if date_format:
            return datetime.strptime(cell, date_format).date().isoformat()
        return date.fromisoformat(cell).isoformat()
    except ValueError as err:
        expected = date_format or "YYYY-MM-DD"
        raise CellError(f"not a date ({expected})") from err


def is_formula_like(cell: str) -> bool:
    """Would a spreadsheet run this cell? `=cmd()`, `+cmd`, `-cmd`, `@cmd`, but not `-12.5`."""
    return cell.startswith(_FORMULA_STARTS) and not is_number(cell)


def check_text(cell: str) -> str:
    if is_formula_like(cell):
        raise CellError("formula-like text (starts with =, +, - or @): CSV injection risk")
    return cell
