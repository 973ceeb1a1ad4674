"""Importing a suppression file: read the whole file first, then write it in one transaction.

The file is parsed before any connection is borrowed, so a large or slow file never
holds one of the pool's connections; a bad row rejects the whole file (every problem
listed, nothing written), and a good file's targets go in in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.lists.errors import ListFileError
from csm.lists.mapping import FileFormat
from csm.lists.reader import csv_records, is_csv_error, open_source
from csm.suppressions.errors import ImportProblem, SuppressionError, SuppressionImportError
from csm.suppressions.store import campaign_id_of, insert_many
from csm.suppressions.targets import (
    DEFAULT_REASON,
    BadCell,
    SuppressionKind,
    Target,
    checked_reason,
    read_reason,
)

#: The columns a suppression file may have (header names, any case).
_TARGET_COLUMNS = tuple(SuppressionKind)
_REASON_COLUMN = "reason"
#: Other header names for them, as the list importer accepts `account_key` for `account`.
_ALIASES = {"account_key": "account"}


@dataclass
class ImportReport:
    """What `import_suppressions` did, by kind."""

    file: str
    campaign: str | None
    rows: int = 0  # data records read (blank lines not counted)
    added: dict[str, int] = field(default_factory=dict)  # new suppressions by kind
    already_present: dict[str, int] = field(default_factory=dict)  # stored before, by kind
    duplicates_in_file: int = 0  # targets named again by a later row (first row's reason kept)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def total_added(self) -> int:
        return sum(self.added.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ParsedFile:
    """The valid targets of a file, first reason kept, in file order; or its problems."""

    rows: int = 0
    targets: dict[Target, str] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def by_kind(self) -> dict[SuppressionKind, list[tuple[str, str]]]:
        """(value, reason) of each target, grouped by kind, in file order."""
        grouped: dict[SuppressionKind, list[tuple[str, str]]] = {}
        for target, reason in self.targets.items():
            grouped.setdefault(target.kind, []).append((target.value, reason))
        return grouped


@dataclass(frozen=True)
class _Columns:
    """Where a file's header puts its targets and its reason; the header's names."""

    targets: list[tuple[SuppressionKind, int]]
    reason: int | None
    names: list[str]


async def import_suppressions(
    engine: AsyncEngine,
    path: Path,
    *,
    campaign: str | None = None,
    reason: str = DEFAULT_REASON,
    delimiter: str | None = None,
    default_region: str = "US",
) -> ImportReport:
    """Suppress every target of a CSV file, in `campaign` (None: every campaign).

    The header names any of the columns `account`, `phone`, `email` (any case)
    and optionally `reason` (else `reason` applies); other columns are ignored.
    Each row fills one or more targets. A UTF-8 BOM is fine; the delimiter
    (, ; tab |) is sniffed unless given. Any bad row rejects the whole file:
    `SuppressionImportError` lists every problem as file:line: column: reason,
    and nothing is written. Otherwise all targets go in one transaction;
    those already suppressed in the scope are left as they are.
    """
    default_reason = checked_reason(reason)
    path = Path(path)
    async with driver_connection(engine) as connection:  # an unknown campaign is said first
        campaign_id = await campaign_id_of(connection, campaign)
    parsed = parse_file(path, delimiter, default_reason, default_region)
    if parsed.problems:
        raise SuppressionImportError(path, parsed.problems)
    report = ImportReport(
        file=str(path),
        campaign=campaign,
        rows=parsed.rows,
        duplicates_in_file=parsed.duplicates,
        ignored_columns=parsed.ignored,
    )
    async with driver_connection(engine) as connection, connection.transaction():
        for kind, pairs in parsed.by_kind().items():
            added = await insert_many(connection, campaign_id, kind, pairs)
            report.added[kind.value] = added
            report.already_present[kind.value] = len(pairs) - added
    return report


def parse_file(
    path: Path, delimiter: str | None, default_reason: str, default_region: str
) -> ParsedFile:
    """Every record of the file read into targets, or the problems of the bad ones."""
    try:
        source = open_source(path, FileFormat.CSV, delimiter)
    except ListFileError as err:
        raise SuppressionError(str(err)) from err
    parsed = ParsedFile()
    columns = _columns(path, source.header, parsed.ignored)
    with path.open("rb") as handle:
        handle.seek(source.data_offset)
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = source.data_line + data.count(b"\n", 0, err.start)
        raise SuppressionError(f"{path}:{line}: not UTF-8; save the file as UTF-8") from err
    for line, cells in csv_records(text, source.data_line, source.delimiter):
        parsed.rows += 1
        found = _record(line, cells, columns, default_reason, default_region, parsed.problems)
        if found is None:
            continue
        row_reason, targets = found
        for target in targets:
            if target in parsed.targets:
                parsed.duplicates += 1
            else:
                parsed.targets[target] = row_reason
    return parsed


def _columns(path: Path, header: Sequence[str], ignored: list[str]) -> _Columns:
    """The header's target and reason columns; other names go to `ignored`."""
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        folded = name.casefold()
        folded = _ALIASES.get(folded, folded)
        if folded in (*_TARGET_COLUMNS, _REASON_COLUMN):
            if folded in found:
                raise SuppressionError(f"{path}: the column {folded!r} appears twice in the header")
            found[folded] = index
        else:
            ignored.append(name)
    targets = [(SuppressionKind(name), found[name]) for name in _TARGET_COLUMNS if name in found]
    if not targets:
        names = ", ".join(repr(name) for name in header)
        raise SuppressionError(
            f"{path}: the header names none of the columns account, phone, email (found {names})"
        )
    return _Columns(targets=targets, reason=found.get(_REASON_COLUMN), names=list(header))


def _record(
    line: int,
    cells: list[str],
    columns: _Columns,
    default_reason: str,
    default_region: str,
    problems: list[ImportProblem],
) -> tuple[str, list[Target]] | None:
    """One record's reason and targets, or None after adding its problems to `problems`."""
    if is_csv_error(cells):
        problems.append(ImportProblem(line, "", f"unreadable record ({cells[1]})"))
        return None
    width = len(columns.names)
    if len(cells) != width:
        problems.append(
            ImportProblem(line, "", f"{len(cells)} columns where the header has {width}")
        )
        return None
    before = len(problems)
    reason = default_reason
    if columns.reason is not None and cells[columns.reason].strip():
        try:
            reason = read_reason(cells[columns.reason])
        except BadCell as err:
            problems.append(ImportProblem(line, columns.names[columns.reason], str(err)))
    targets: list[Target] = []
    for kind, index in columns.targets:
        if not cells[index].strip():
            continue
        try:
            targets.append(Target.read(kind, cells[index], default_region))
        except BadCell as err:
            problems.append(ImportProblem(line, columns.names[index], str(err)))
    if not targets and len(problems) == before:
        filled = ", ".join(columns.names[index] for _, index in columns.targets)
        problems.append(ImportProblem(line, "", f"no target filled in ({filled})"))
    return (reason, targets) if len(problems) == before else None
