"""A chunk's text as records of cells, one per data row, in file order.

Both formats come out in the one shape the row checks read: a CSV record's
cells, or a JSON Lines object's values placed under the header's columns (each
scalar as the text a CSV cell would hold). A record that cannot be read, or has
the wrong number of columns, comes with its problem instead of stopping the
chunk, so it becomes one reject with its line number.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from csm.lists.reader import csv_records, is_csv_error, jsonl_records

#: Reject reason codes of a whole record, for the report's breakdown.
WRONG_COLUMNS = "wrong_number_of_columns"
BAD_RECORD = "unreadable_record"
#: Warning code: a JSON Lines object had fields the header does not name.
IGNORED_FIELDS = "ignored_fields"


class RowError(Exception):
    """A bad cell or record: the column (empty for the whole record), a code and a reason."""

    def __init__(self, column: str, code: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.code = code
        self.reason = reason


#: (line, cells or None when unreadable, the record as in the file, its problem if any).
#: A plain tuple: one is built per row of the import's hot loop.
Record = tuple[int, list[str] | None, list[str] | str, RowError | None]


def csv_rows(text: str, first_line: int, delimiter: str, width: int) -> Iterator[Record]:
    """The CSV records of `text`; one that is not `width` cells wide carries its problem."""
    for line, cells in csv_records(text, first_line, delimiter):
        if is_csv_error(cells):
            yield line, None, cells[1:], RowError("", BAD_RECORD, f"unreadable CSV: {cells[1]}")
        elif len(cells) != width:
            reason = f"wrong number of columns: expected {width}, found {len(cells)}"
            yield line, cells, cells, RowError("", WRONG_COLUMNS, reason)
        else:
            yield line, cells, cells, None


def jsonl_rows(
    text: str, first_line: int, header_index: dict[str, int], width: int, warnings: Counter[str]
) -> Iterator[Record]:
    """The JSON Lines objects of `text` as `width` cells in header order (absent fields
    empty). Fields the header does not name are ignored, counted once per record in
    `warnings`."""
    for line, raw in jsonl_records(text, first_line):
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            yield line, None, raw, RowError("", BAD_RECORD, f"not JSON: {err.msg}")
            continue
        if not isinstance(record, dict):
            yield line, None, raw, RowError("", BAD_RECORD, "not a JSON object")
            continue
        cells = [""] * width
        problem = None
        extra = False
        for name, value in record.items():
            position = header_index.get(name)
            if position is None:
                extra = True
                continue
            try:
                cells[position] = _scalar_cell(value)
            except TypeError as err:
                problem = problem or RowError(name, BAD_RECORD, str(err))
        if extra:
            warnings[IGNORED_FIELDS] += 1
        yield line, cells, raw, problem


def _scalar_cell(value: Any) -> str:
    """A JSON Lines value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    raise TypeError("nested JSON values are not supported")
