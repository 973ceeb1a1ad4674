"""Exports of a sub-campaign's attempt ledger for the business (`csm results`).

Two shapes:

- the rows: one per attempt-ledger row (an attempt, or a contact-level skip
  with `device_id` 0), with the day, pass, try (1, 2, ...), time, channel, account key,
  device, result, skip reason and the response groups the result falls in.
  The ledger can hold millions of rows, so they stream from a server-side
  cursor and are written as they come;
- the summary: per day, pass, result code (skips: `skipped` and the reason)
  and response group, how many rows and how many distinct contacts.

Pass names and response groups come from the strategy of each day: the
sub-campaign's own strategy when it was started with one, else the campaign's
defined strategy in force that day. Pass numbers index that strategy's passes;
a number past its end is a pass an amendment added that day, and has no name
here.

The exports carry contact data (account keys, phone numbers, e-mail
addresses): they are for the business, never for Temporal or logs. CSV cells
that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
tab or carriage return) get a leading `'`, as OWASP advises against CSV
injection, so a phone number reads `'+14155550123` there. JSON Lines carries
the values as they are.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import StrategyVersionError, strategy_in_force
from csm.database import driver_connection, session_factory
from csm.errors import CsmError
from csm.ledger import try_shown
from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignRef, find_sub_campaign
from csm.tables import SubCampaign

#: Output formats: `csv`, or `json` (JSON Lines for the rows, one JSON array for the summary).
FORMATS = ("csv", "json")
#: Progress is reported every this many rows.
PROGRESS_EVERY = 100_000
#: Rows the server-side cursor fetches at a time.
PREFETCH = 2_000

ROW_COLUMNS = (
    "day",
    "pass_number",
    "pass_name",
    "try",
    "attempted_at",
    "channel",
    "account_key",
    "device_kind",
    "device",
    "result",
    "skip_reason",
    "response_groups",
)
SUMMARY_COLUMNS = (
    "day",
    "pass_number",
    "pass_name",
    "result",
    "skip_reason",
    "response_group",
    "rows",
    "contacts",
)

#: First characters a spreadsheet reads as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)

# Two constant statements rather than one with an optional filter, so each gets a plan
# that walks the ledger's unique index (sub-campaign, day, pass, contact, device, try) in order.
_ROWS = """
SELECT a.day, a.pass_number, a.try_number, a.attempted_at, a.channel, c.account_key,
       d.kind AS device_kind, d.value AS device, a.result, a.skip_reason
  FROM attempts a
  LEFT JOIN contacts c ON c.id = a.contact_id
  LEFT JOIN devices d ON d.id = a.device_id AND a.device_id <> 0
 WHERE a.sub_campaign_id = $1 {day}
 ORDER BY a.day, a.pass_number, a.contact_id, a.device_id, a.try_number
"""
ROWS_ALL_DAYS = _ROWS.format(day="")
ROWS_ONE_DAY = _ROWS.format(day="AND a.day = $2")

_SUMMARY = """
SELECT day, pass_number, result, skip_reason,
       count(*) AS rows, count(DISTINCT contact_id) AS contacts
  FROM attempts
 WHERE sub_campaign_id = $1 {day}
 GROUP BY day, pass_number, result, skip_reason
 ORDER BY day, pass_number, result, skip_reason NULLS FIRST
"""
SUMMARY_ALL_DAYS = _SUMMARY.format(day="")
SUMMARY_ONE_DAY = _SUMMARY.format(day="AND day = $2")


class Writable(Protocol):
    """Where an export goes: a text file, stdout, or anything with `write(str)`."""

    def write(self, text: str, /) -> object: ...


class ExportError(CsmError):
    """An export that cannot be made as asked (bad day, unknown format, unwritable output)."""


def parse_day(text: str) -> date:
    """A campaign day written YYYY-MM-DD."""
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ExportError(f"bad --day {text!r}: write the campaign day as YYYY-MM-DD") from None


def check_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {text!r}: use one of {', '.join(FORMATS)}")
    return fmt


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula: `'` before a formula's first char."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


# ---- the strategy of each day ------------------------------------------------------------


@dataclass(frozen=True)
class DayStrategy:
    """What a day's strategy says about the ledger's numbers and codes."""

    pass_names: tuple[str, ...] = ()  # index 0 is pass 1
    code_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code → group names
    known: bool = False  # False: no strategy in force that day (names and groups left empty)

    @classmethod
    def of(cls, strategy: StrategyDefinition) -> DayStrategy:
        groups: dict[str, list[str]] = {}
        for name, codes in strategy.groups().items():
            for code in codes:
                groups.setdefault(code, []).append(name)
        return cls(
            pass_names=tuple(p.name for p in strategy.passes),
            code_groups={code: tuple(names) for code, names in groups.items()},
            known=True,
        )

    def pass_name(self, number: int) -> str | None:
        """The pass's name; None for a pass an amendment added (past the strategy's end)."""
        return self.pass_names[number - 1] if 1 <= number <= len(self.pass_names) else None

    def groups(self, result: str) -> tuple[str, ...]:
        return self.code_groups.get(result, ())


class Strategies:
    """The strategy of each campaign day of one sub-campaign, read once per day."""

    def __init__(self, engine: AsyncEngine, ref: SubCampaignRef, override: dict[str, Any] | None):
        self.engine = engine
        self.ref = ref
        self.override: DayStrategy | None = None
        self.unknown_days: list[date] = []
        self._days: dict[date, DayStrategy] = {}
        if override is not None:
            try:
                self.override = DayStrategy.of(StrategyDefinition.model_validate(override))
            except ValidationError:
                self.override = DayStrategy()

    @classmethod
    async def load(cls, engine: AsyncEngine, ref: SubCampaignRef) -> Strategies:
        async with session_factory(engine)() as session:
            row = await session.get(SubCampaign, ref.id)
            override = row.strategy_override if row is not None else None
        return cls(engine, ref, override)

    async def on(self, day: date) -> DayStrategy:
        if self.override is not None:
            return self.override
        found = self._days.get(day)
        if found is None:
            try:
                _, definition = await strategy_in_force(self.engine, self.ref.campaign_id, day)
                found = DayStrategy.of(definition)
            except StrategyVersionError:
                found = DayStrategy()
                self.unknown_days.append(day)
            self._days[day] = found
        return found


# ---- reading the ledger ------------------------------------------------------------------


@dataclass
class ExportStats:
    """What an export wrote: rows, and the days whose strategy could not be read."""

    sub_campaign: SubCampaignRef
    rows: int = 0
    unknown_days: list[date] = field(default_factory=list)


async def attempt_rows(
    engine: AsyncEngine, ref: SubCampaignRef, strategies: Strategies, *, day: date | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The sub-campaign's ledger rows (all days, or one), in ledger order, as they stream in.

    Values are plain: `pass_name` None when unknown, `response_groups` a list, device
    fields None on contact-level skips.
    """
    query, args = (ROWS_ALL_DAYS, (ref.id,)) if day is None else (ROWS_ONE_DAY, (ref.id, day))
    # One snapshot for the whole export; the server keeps the result, we hold PREFETCH rows.
    async with (
        driver_connection(engine) as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        cursor = await connection.cursor(query, *args)
        day_of_plan, plan = None, DayStrategy()
        while records := await cursor.fetch(PREFETCH):
            for record in records:
                if record["day"] != day_of_plan:
                    day_of_plan, plan = record["day"], await strategies.on(record["day"])
                yield {
                    "day": record["day"].isoformat(),
                    "pass_number": record["pass_number"],
                    "pass_name": plan.pass_name(record["pass_number"]),
                    "try": try_shown(record["try_number"]),
                    "attempted_at": _utc(record["attempted_at"]),
                    "channel": record["channel"],
                    "account_key": record["account_key"],
                    "device_kind": record["device_kind"],
                    "device": record["device"],
                    "result": record["result"],
                    "skip_reason": record["skip_reason"],
                    "response_groups": list(plan.groups(record["result"])),
                }


async def summary_rows(
    engine: AsyncEngine, ref: SubCampaignRef, strategies: Strategies, *, day: date | None = None
) -> list[dict[str, Any]]:
    """Per day × pass × result (× skip reason) × response group: rows and distinct contacts.

    A result in two response groups gives two rows with the same counts, and a result in
    none one row with no group: sum `rows` over one group, not over the whole summary.
    """
    query, args = (SUMMARY_ALL_DAYS, (ref.id,)) if day is None else (SUMMARY_ONE_DAY, (ref.id, day))
    async with driver_connection(engine) as connection:
        records = await connection.fetch(query, *args)
    summary = []
    for record in records:
        plan = await strategies.on(record["day"])
        for group in plan.groups(record["result"]) or (None,):
            summary.append(
                {
                    "day": record["day"].isoformat(),
                    "pass_number": record["pass_number"],
                    "pass_name": plan.pass_name(record["pass_number"]),
                    "result": record["result"],
                    "skip_reason": record["skip_reason"],
                    "response_group": group,
                    "rows": record["rows"],
                    "contacts": record["contacts"],
                }
            )
    return summary


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# ---- writing -----------------------------------------------------------------------------


def csv_cells(row: dict[str, Any], columns: tuple[str, ...]) -> list[object]:
    """A row as neutralised CSV cells: None empty, lists joined with ';', numbers as they are.

    On the hot path of a large export: written for speed, with `neutralise` inlined.
    """
    cells: list[object] = []
    for column in columns:
        value = row[column]
        if value.__class__ is str:
            cells.append(f"'{value}" if value[:1] in _FORMULA_FIRST else value)
        elif value is None:
            cells.append("")
        elif isinstance(value, list | tuple):
            cells.append(neutralise(";".join(value)))
        else:
            cells.append(value)
    return cells


async def export_rows(
    engine: AsyncEngine,
    reference: str,
    out: Writable,
    *,
    day: date | None = None,
    fmt: str = "csv",
    progress: Callable[[int], None] | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> ExportStats:
    """Write the sub-campaign's ledger rows to `out` as CSV (with a header) or JSON Lines.

    `progress(rows written)` is called every `progress_every` rows.
    """
    fmt = check_format(fmt)
    ref = await find_sub_campaign(engine, reference)
    strategies = await Strategies.load(engine, ref)
    stats = ExportStats(ref)
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(ROW_COLUMNS)
    async with contextlib.aclosing(attempt_rows(engine, ref, strategies, day=day)) as rows:
        async for row in rows:
            if writer is not None:
                writer.writerow(csv_cells(row, ROW_COLUMNS))
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            stats.rows += 1
            if progress is not None and stats.rows % progress_every == 0:
                progress(stats.rows)
    stats.unknown_days = strategies.unknown_days
    return stats


async def export_summary(
    engine: AsyncEngine, reference: str, out: Writable, *, day: date | None = None, fmt: str = "csv"
) -> ExportStats:
    """Write the sub-campaign's summary to `out` as CSV (with a header) or one JSON array."""
    fmt = check_format(fmt)
    ref = await find_sub_campaign(engine, reference)
    strategies = await Strategies.load(engine, ref)
    rows = await summary_rows(engine, ref, strategies, day=day)
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(SUMMARY_COLUMNS)
        writer.writerows(csv_cells(row, SUMMARY_COLUMNS) for row in rows)
    else:
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    return ExportStats(ref, rows=len(rows), unknown_days=strategies.unknown_days)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file that appears at `path` only when the block succeeds (temp file + rename).

    The temporary file sits next to `path` (same file system, so the rename is atomic) and
    is removed on failure. The file is created readable by its owner only: it carries
    contact data.
    """
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a directory")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temp, path)
        except OSError as err:
            raise ExportError(f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
