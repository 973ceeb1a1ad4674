"""What an import did: counts for people and scripts, and the rejects file.

The report carries counts, line numbers, column names and reasons, never a
cell's value, so it can be printed, logged or pasted into a ticket. The
rejects file does carry the rejected rows as they were: it is for fixing
them and importing them again, and it is written next to the list file,
which holds the same data.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csm.lists.mapping import FileFormat
from csm.lists.rows import Reject

#: How many reject reasons the report lists one by one.
FIRST_REJECTS = 10


@dataclass
class RejectSummary:
    line: int
    column: str
    code: str
    reason: str


@dataclass
class ImportReport:
    """The outcome of one `import_list`."""

    list: str
    file: str
    format: str
    rows: int = 0  # data records read (blank lines not counted)
    valid: int = 0  # rows that passed every check
    imported: int = 0  # new contacts
    updated: int = 0  # contacts that already existed (seen again)
    changed: int = 0  # ...of which the stored fields or devices changed
    added_to_list: int = 0  # new memberships of this list
    rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    first_rejects: list[RejectSummary] = field(default_factory=list)
    rejects_file: str | None = None
    warnings: dict[str, int] = field(default_factory=dict)
    timezone_sources: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)  # added / updated / removed
    dry_run: bool = False
    strict: bool = False
    seconds: float = 0.0

    @property
    def warning_count(self) -> int:
        return sum(self.warnings.values())

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: `warnings` is {count, by_reason}."""
        data = asdict(self)
        data["warnings"] = {"count": self.warning_count, "by_reason": dict(self.warnings)}
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> list[str]:
        """A few readable lines for a terminal."""
        verb = "would import" if self.dry_run else "imported"
        lines = [
            f"{self.file} → list {self.list!r}: {self.rows} rows, {verb} {self.imported} new "
            f"contacts, {self.updated} already known ({self.changed} changed), "
            f"{self.rejected} rejected",
        ]
        if self.added_to_list:
            lines.append(f"{self.added_to_list} contacts added to the list")
        if self.devices:
            lines.append(
                "devices: " + ", ".join(f"{count} {what}" for what, count in self.devices.items())
            )
        if self.timezone_sources:
            lines.append(
                "time zones from: "
                + ", ".join(f"{where} {count}" for where, count in self.timezone_sources.items())
            )
        if self.warnings:
            lines.append(
                f"{self.warning_count} warnings: "
                + ", ".join(f"{code} {count}" for code, count in self.warnings.items())
            )
        for reject in self.first_rejects:
            where = f"line {reject.line}" + (f", column {reject.column!r}" if reject.column else "")
            lines.append(f"  rejected {where}: {reject.reason}")
        if self.rejected > len(self.first_rejects):
            lines.append(f"  ... and {self.rejected - len(self.first_rejects)} more")
        if self.rejects_file:
            lines.append(f"rejected rows written to {self.rejects_file}")
        if self.dry_run:
            lines.append("dry run: nothing was written to the database")
        return lines


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def write_rejects(
    path: Path, header: tuple[str, ...], file_format: FileFormat, rejects: list[Reject]
) -> None:
    """Rejected rows with line, column and reason first, then the row as it was.

    The three leading columns come first so that a row with the wrong number
    of cells is still written whole. For JSON Lines the row is the original
    line, in one `record` column. Open the file as text: it holds the rejected
    cells verbatim, formula-like ones included.
    """
    with path.open("w", encoding="utf-8", errors="surrogateescape", newline="") as handle:
        writer = csv.writer(handle)
        if file_format is FileFormat.JSONL:
            writer.writerow(["line", "column", "reason", "record"])
        else:
            writer.writerow(["line", "column", "reason", *header])
        for reject in sorted(rejects, key=lambda r: r.line):
            raw = [reject.raw] if isinstance(reject.raw, str) else reject.raw
            writer.writerow([reject.line, reject.column, reject.reason, *raw])
