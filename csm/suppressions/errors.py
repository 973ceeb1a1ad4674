"""What goes wrong with suppressions: one error type, and a file's bad rows listed.

Every error of csm.suppressions is a `SuppressionError` with a one-line message
(an import's message lists its bad rows, one a line). Messages about file rows
name the line and column, never the cell's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from csm.errors import CsmError

#: How many bad rows an import error lists one by one.
MAX_LISTED_PROBLEMS = 20


class SuppressionError(CsmError):
    """A suppression request that cannot be done: bad target, unknown campaign or id, bad file."""


@dataclass(frozen=True)
class ImportProblem:
    """One bad cell or record of a suppression file: where, and what is wrong."""

    line: int
    column: str  # empty when the whole record is wrong
    reason: str


class SuppressionImportError(SuppressionError):
    """A suppression file with bad rows: nothing was imported. `problems` lists them all."""

    def __init__(self, path: Path, problems: list[ImportProblem]) -> None:
        self.path = path
        self.problems = problems
        rows = len({problem.line for problem in problems})
        lines = [f"{path}: {rows} bad row{'s' if rows != 1 else ''}, nothing imported:"]
        for problem in problems[:MAX_LISTED_PROBLEMS]:
            column = f" {problem.column}:" if problem.column else ""
            lines.append(f"  {path}:{problem.line}:{column} {problem.reason}")
        if len(problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more problems")
        super().__init__("\n".join(lines))
