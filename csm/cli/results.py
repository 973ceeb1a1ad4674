"""`csm results SUB`: a sub-campaign's attempt ledger as CSV or JSON Lines, for the business.

A thin layer over csm.exports. The export carries contact data (account keys,
phone numbers, e-mail addresses). Rows stream from the database to the output
as they come; with `--output` they go to a temporary file renamed into place at
the end, so a failure leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from csm.cli.database import with_database
from csm.errors import CsmError

if TYPE_CHECKING:
    from datetime import date

    from sqlalchemy.ext.asyncio import AsyncEngine

    from csm.exports import ExportStats, Writable


class _OutputFailed(CsmError):
    """Writing the export failed (disk full, closed pipe): not a database problem."""


class _PipeClosed(_OutputFailed):
    """The reader of stdout went away (`csm results ... | head`)."""


class _Output:
    """A text stream whose write errors are not OSErrors, which `with_database` would take
    for an unreachable database."""

    def __init__(self, stream: TextIO, where: str):
        self.stream = stream
        self.where = where

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise _PipeClosed(f"{self.where} was closed") from None
        except OSError as err:
            raise _OutputFailed(f"cannot write {self.where}: {err.strerror or err}") from None


def results_command(
    sub: str = typer.Argument(..., help="the sub-campaign: its workflow id, or its name if unique"),
    day: str | None = typer.Option(
        None, "--day", help="one campaign day, YYYY-MM-DD (default: every day)"
    ),
    fmt: str = typer.Option(
        "csv",
        "--format",
        "-f",
        help="csv (with a header row) or json: JSON Lines, one object per line "
        "(with --summary, one JSON array)",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="write to this file (atomically: complete or not at all) instead of stdout",
    ),
    summary: bool = typer.Option(
        False,
        "--summary",
        help="per day, pass, result (skips: reason) and response group: rows and contacts",
    ),
) -> None:
    """Export a sub-campaign's attempts: one row per attempt-ledger row, or a summary.

    Each row: day, pass number and name, try, attempted_at (UTC), channel,
    account key, device kind and device (empty on contact-level skips), result,
    skip reason, response groups (';'-joined in CSV). It carries contact data.

    CSV cells starting with = + - @ get a leading ' against spreadsheet formula
    injection, so a phone number reads '+14155550123. JSON Lines keeps values
    as they are.
    """
    from csm.exports import check_format, export_rows, export_summary, parse_day

    the_day = parse_day(day) if day is not None else None
    the_format = check_format(fmt)

    async def run(engine: AsyncEngine, out: Writable) -> ExportStats:
        if summary:
            return await export_summary(engine, sub, out, day=the_day, fmt=the_format)
        progress = _progress if output is not None else None
        return await export_rows(engine, sub, out, day=the_day, fmt=the_format, progress=progress)

    try:
        with _destination(output) as out:
            stats = with_database(lambda engine: run(engine, out))
    except _PipeClosed:
        # Nothing more to say to a reader that left; keep the interpreter's final flush quiet.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(1) from None
    _report(stats, output, the_day, summary)


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[Writable]:
    from csm.exports import atomic_output

    if output is None:
        yield _Output(sys.stdout, "stdout")
        return
    with atomic_output(output) as handle:
        yield _Output(handle, str(output))


def _progress(rows: int) -> None:
    print(f"csm results: {rows:,} rows written", file=sys.stderr, flush=True)


def _report(stats: ExportStats, output: Path | None, day: date | None, summary: bool) -> None:
    ref = stats.sub_campaign
    for unknown in stats.unknown_days:
        print(
            f"csm results: note: campaign {ref.campaign!r} had no strategy in force on "
            f"{unknown.isoformat()}: pass names and response groups are empty that day",
            file=sys.stderr,
        )
    if output is None:
        return
    what = "summary rows" if summary else "rows"
    days = f" of {day.isoformat()}" if day is not None else ""
    print(
        f"wrote {stats.rows:,} {what} of sub-campaign {ref.name!r}{days} to {output}",
        file=sys.stderr,
    )
