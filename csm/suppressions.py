"""Suppression lists: accounts, phone numbers and e-mail addresses not to contact.

A suppression names one *target* — an account (by its account key, as written
in list files), a phone number (E.164) or an e-mail address (lower-cased) — in
one campaign or, with no campaign, in every campaign. Targets are stored
normalised exactly as the list importer stores devices and account keys, so
"(415) 555-0100" suppresses the device "+14155550100", and an account key
suppresses the account even if it is imported only later.

Pass activities read the table as each batch of contacts loads, just before
its attempts, and add global suppressions themselves when an SMS is answered
with STOP (`stop_reply`) or an e-mail hard-bounces (`hard_bounce`).
`receive_sms` is the entry point a real SMS provider's inbound webhook calls.

Every error of this module is a `SuppressionError` with a one-line message
(an import's message lists its bad rows, one a line). Messages about file
rows name the line and column, never the cell's value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.errors import CsmError
from csm.lists import emails
from csm.lists.cells import is_formula_like
from csm.lists.errors import ListFileError
from csm.lists.mapping import FileFormat
from csm.lists.phones import PhoneError, PhoneNormaliser
from csm.lists.reader import csv_records, is_csv_error, open_source
from csm.lists.rows import MAX_ACCOUNT_KEY
from csm.strategy.values import did_you_mean, with_hint


class SuppressionKind(StrEnum):
    """What a suppression names."""

    ACCOUNT = "account"  # an account key, as written in list files
    PHONE = "phone"  # a phone number in E.164
    EMAIL = "email"  # an e-mail address, lower-cased


DEFAULT_REASON = "do_not_contact"
#: Reasons the pass activities and `receive_sms` write.
STOP_REPLY = "stop_reply"
HARD_BOUNCE = "hard_bounce"
#: The length of `suppressions.reason`.
MAX_REASON = 32
#: The CTIA standard opt-out keywords: a message that is exactly one of them opts out.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
#: Ids are `bigint`: a number outside names no suppression (and asyncpg would refuse it).
_MAX_ID = 2**63 - 1
#: How many bad rows an import error lists one by one.
MAX_LISTED_PROBLEMS = 20
#: Rows sent to the database in one statement by an import.
_IMPORT_BATCH = 10_000
_FORMULA_REASON = "formula-like text (starts with =, +, - or @): CSV injection risk"


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


@dataclass(frozen=True)
class SuppressionRow:
    """One stored suppression; `campaign` is the scope's campaign name, None for every campaign."""

    id: int
    campaign: str | None
    kind: str
    value: str
    reason: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True)
class SuppressionPage:
    """The newest suppressions matching a listing's filters, and how many match in all."""

    rows: list[SuppressionRow]
    total: int


@dataclass(frozen=True)
class Added:
    """The suppression of a target: its id, and whether this call created it."""

    id: int
    created: bool
    kind: str
    value: str


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

    def summary(self) -> list[str]:
        """A few readable lines for a terminal."""
        scope = f"campaign {self.campaign!r}" if self.campaign else "every campaign"
        lines = [
            f"{self.file}: {self.rows} rows, {self.total_added} suppressions added for {scope}, "
            f"{sum(self.already_present.values())} already present"
        ]
        for kind in SuppressionKind:
            added, present = self.added.get(kind, 0), self.already_present.get(kind, 0)
            if added or present:
                lines.append(f"  {kind}: {added} added, {present} already present")
        if self.duplicates_in_file:
            lines.append(f"  {self.duplicates_in_file} targets named more than once in the file")
        if self.ignored_columns:
            lines.append("  ignored columns: " + ", ".join(self.ignored_columns))
        return lines


# -- targets ---------------------------------------------------------------------------------


#: A number already written in E.164. The numbering plan may not know it (synthetic lists use
#: unassigned exchanges such as 602-100), but a device or an inbound sender can still carry it,
#: and suppressing it must be possible: such a number is stored as written.
_E164 = re.compile(r"\+[1-9]\d{7,14}")


class _BadCell(ValueError):
    """A target or reason cell that cannot be used; the message names no value."""


@lru_cache(maxsize=8)
def _phones(default_region: str) -> PhoneNormaliser:
    return PhoneNormaliser(default_region)


def _normalise(kind: SuppressionKind, text: str, default_region: str) -> str:
    """The stored form of a target, or _BadCell."""
    cell = text.strip()
    if not cell:
        raise _BadCell(f"empty {kind}")
    if kind is SuppressionKind.PHONE:
        try:
            return _phones(default_region).normalise(cell).e164
        except PhoneError as err:
            if _E164.fullmatch(cell):
                return cell  # E.164 as written, though the plan does not know it: see _E164
            raise _BadCell(str(err)) from err
    if kind is SuppressionKind.EMAIL:
        try:
            return emails.normalise(cell)
        except emails.EmailError as err:
            raise _BadCell(str(err)) from err
    if is_formula_like(cell):  # the list importer rejects such account keys: none can exist
        raise _BadCell(_FORMULA_REASON)
    if len(cell) > MAX_ACCOUNT_KEY:  # nor such long ones, and the unique index refuses them
        raise _BadCell(f"account key longer than {MAX_ACCOUNT_KEY} characters")
    return cell


def _check_reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise _BadCell("empty reason")
    if len(reason) > MAX_REASON:
        raise _BadCell(f"reason longer than {MAX_REASON} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in reason):
        raise _BadCell("reason has control characters")
    if is_formula_like(reason):
        raise _BadCell(_FORMULA_REASON)
    return reason


def normalise_target(kind: str, text: str, *, default_region: str = "US") -> str:
    """A target as stored: the account key stripped, a phone in E.164, an e-mail lower-cased."""
    chosen = _kind(kind)
    try:
        return _normalise(chosen, text, default_region)
    except _BadCell as err:
        raise SuppressionError(f"{chosen} {text.strip()!r}: {err}") from None


def _kind(kind: str) -> SuppressionKind:
    try:
        return SuppressionKind(kind)
    except ValueError:
        choices = ", ".join(SuppressionKind)
        hint = did_you_mean(kind, list(SuppressionKind))
        raise SuppressionError(with_hint(f"unknown kind {kind!r}: use {choices}", hint)) from None


def _one_target(
    account: str | None, phone: str | None, email: str | None, default_region: str
) -> tuple[SuppressionKind, str]:
    given = [
        (kind, text)
        for kind, text in (
            (SuppressionKind.ACCOUNT, account),
            (SuppressionKind.PHONE, phone),
            (SuppressionKind.EMAIL, email),
        )
        if text is not None
    ]
    if len(given) != 1:
        raise SuppressionError("name exactly one target: an account, a phone or an e-mail")
    kind, text = given[0]
    return kind, normalise_target(kind, text, default_region=default_region)


def _reason(reason: str) -> str:
    try:
        return _check_reason(reason)
    except _BadCell as err:
        raise SuppressionError(f"reason {reason!r}: {err}") from None


def is_opt_out(text: str) -> bool:
    """Is this inbound SMS an opt-out? Only when the whole message is one CTIA keyword.

    Case does not matter, and white space, punctuation and invisible format
    characters around the word are ignored: "STOP", " stop. " and "Stop!" opt
    out. A keyword inside a sentence does not ("please stop calling", "stop it"):
    carriers and the CTIA handbook treat only the bare keyword as the standard
    opt-out, and a sentence may well be about something else ("don't stop").
    """
    start, end = 0, len(text)
    while start < end and _ignorable(text[start]):
        start += 1
    while end > start and _ignorable(text[end - 1]):
        end -= 1
    return text[start:end].upper() in OPT_OUT_KEYWORDS


def _ignorable(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] == "P" or unicodedata.category(ch) == "Cf"


# -- the database ----------------------------------------------------------------------------

_ROW = """
SELECT s.id, c.name AS campaign, s.kind, s.value, s.reason, s.created_at
FROM {source} s LEFT JOIN campaigns c ON c.id = s.campaign_id
"""

_INSERT_ONE = """
WITH inserted AS (
    INSERT INTO suppressions (campaign_id, kind, value, reason)
    VALUES ($1::int, $2::text, $3::text, $4::text)
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT id, true AS created FROM inserted
UNION ALL
SELECT id, false FROM suppressions
WHERE value = $3 AND kind = $2 AND coalesce(campaign_id, 0) = coalesce($1::int, 0)
LIMIT 1
"""


async def _campaign_id(connection: asyncpg.Connection, campaign: str | None) -> int | None:
    if campaign is None:
        return None
    campaign_id = await connection.fetchval("SELECT id FROM campaigns WHERE name = $1", campaign)
    if campaign_id is None:
        names = [row["name"] for row in await connection.fetch("SELECT name FROM campaigns")]
        raise SuppressionError(
            with_hint(f"unknown campaign {campaign!r}", did_you_mean(campaign, names))
        )
    return campaign_id


async def _insert_one(
    connection: asyncpg.Connection,
    campaign_id: int | None,
    kind: SuppressionKind,
    value: str,
    reason: str,
) -> tuple[int, bool]:
    """(id, created) of the target's suppression in the scope, inserting it if missing."""
    for _ in range(3):
        # Empty only when a concurrent transaction inserted the same target after this
        # statement's snapshot was taken: the next statement sees it.
        row = await connection.fetchrow(_INSERT_ONE, campaign_id, kind.value, value, reason)
        if row is not None:
            return row["id"], row["created"]
    raise SuppressionError(f"could not add the suppression of {kind} {value!r}: try again")


def _row(record: asyncpg.Record) -> SuppressionRow:
    return SuppressionRow(
        id=record["id"],
        campaign=record["campaign"],
        kind=record["kind"],
        value=record["value"],
        reason=record["reason"],
        created_at=record["created_at"],
    )


async def ensure_suppression(
    engine: AsyncEngine,
    *,
    account: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    campaign: str | None = None,
    reason: str = DEFAULT_REASON,
    default_region: str = "US",
) -> Added:
    """Suppress exactly one target in `campaign` (None: every campaign); idempotent.

    When the target is already suppressed in that scope, the stored row is
    left as it is (its reason too) and `created` is False.
    """
    kind, value = _one_target(account, phone, email, default_region)
    checked_reason = _reason(reason)
    async with driver_connection(engine) as connection, connection.transaction():
        campaign_id = await _campaign_id(connection, campaign)
        number, created = await _insert_one(connection, campaign_id, kind, value, checked_reason)
    return Added(id=number, created=created, kind=kind.value, value=value)


async def add_suppression(
    engine: AsyncEngine,
    *,
    account: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    campaign: str | None = None,
    reason: str = DEFAULT_REASON,
    default_region: str = "US",
) -> int:
    """Suppress exactly one target; returns the suppression's id (the existing one if any).

    `account` is an account key (the account need not exist yet), `phone` any
    spelling the list importer accepts (numbers without +country are read in
    `default_region`), `email` an address. `campaign` None means every campaign.
    """
    added = await ensure_suppression(
        engine,
        account=account,
        phone=phone,
        email=email,
        campaign=campaign,
        reason=reason,
        default_region=default_region,
    )
    return added.id


async def remove_suppression(engine: AsyncEngine, suppression_id: int) -> SuppressionRow:
    """Lift one suppression by id; returns what it was. No such id → SuppressionError."""
    if not 1 <= suppression_id <= _MAX_ID:
        raise SuppressionError(f"no suppression with id {suppression_id}")
    async with driver_connection(engine) as connection:
        record = await connection.fetchrow(
            "WITH gone AS (DELETE FROM suppressions WHERE id = $1::bigint RETURNING *)"
            + _ROW.format(source="gone"),
            suppression_id,
        )
    if record is None:
        raise SuppressionError(f"no suppression with id {suppression_id}")
    return _row(record)


async def remove_target(
    engine: AsyncEngine,
    *,
    account: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    campaign: str | None = None,
    every_scope: bool = False,
    default_region: str = "US",
) -> int:
    """Lift the suppression of one target in `campaign` (None: the every-campaign one).

    With `every_scope`, lift it in every campaign and globally alike. Returns
    how many suppressions were removed (0 when the target was not suppressed).
    """
    kind, value = _one_target(account, phone, email, default_region)
    if every_scope and campaign is not None:
        raise SuppressionError("name a campaign or every scope, not both")
    async with driver_connection(engine) as connection:
        campaign_id = await _campaign_id(connection, campaign)
        status = await connection.execute(
            "DELETE FROM suppressions WHERE value = $1 AND kind = $2"
            " AND ($4 OR coalesce(campaign_id, 0) = coalesce($3::int, 0))",
            value,
            kind.value,
            campaign_id,
            every_scope,
        )
    return int(status.split()[-1])


async def list_suppressions(
    engine: AsyncEngine,
    *,
    campaign: str | None = None,
    only_global: bool = False,
    kind: str | None = None,
    reason: str | None = None,
    value: str | None = None,
    limit: int | None = 100,
) -> SuppressionPage:
    """The newest suppressions matching every filter given, and how many match in all.

    `campaign` keeps the suppressions scoped to that campaign only (the global
    ones apply to it as well: `only_global` lists those); `value` is a stored
    target (see `normalise_target`). `limit` None lists them all.
    """
    if campaign is not None and only_global:
        raise SuppressionError("list one campaign's suppressions or the global ones, not both")
    if limit is not None and limit < 1:
        raise SuppressionError(f"the limit must be at least 1, not {limit}")
    if limit is not None:
        limit = min(limit, _MAX_ID)  # LIMIT is a bigint; no table holds more rows anyway
    chosen_kind = _kind(kind).value if kind is not None else None
    async with driver_connection(engine) as connection:
        campaign_id = await _campaign_id(connection, campaign)
        where = (
            " WHERE ($1::int IS NULL OR s.campaign_id = $1) AND (NOT $2 OR s.campaign_id IS NULL)"
            " AND ($3::text IS NULL OR s.kind = $3) AND ($4::text IS NULL OR s.reason = $4)"
            " AND ($5::text IS NULL OR s.value = $5)"
        )
        filters = (campaign_id, only_global, chosen_kind, reason, value)
        total = await connection.fetchval("SELECT count(*) FROM suppressions s" + where, *filters)
        records = await connection.fetch(
            _ROW.format(source="suppressions")
            + where
            + " ORDER BY s.created_at DESC, s.id DESC LIMIT $6",
            *filters,
            limit,
        )
    return SuppressionPage(rows=[_row(record) for record in records], total=total)


async def receive_sms(
    engine: AsyncEngine, from_number: str, text: str, *, default_region: str = "US"
) -> bool:
    """An inbound SMS from `from_number`: an opt-out keyword suppresses the number everywhere.

    This is what a real SMS provider's inbound webhook calls. The message opts
    out when it is exactly one of the CTIA keywords (see `is_opt_out`); then
    the number gets a global phone suppression with reason `stop_reply` (kept
    as it is when the number was already suppressed). Returns whether the
    message opted out. A sender that is not a valid phone number is an error.
    """
    phone = normalise_target(SuppressionKind.PHONE, from_number, default_region=default_region)
    if not is_opt_out(text):
        return False
    async with driver_connection(engine) as connection:
        await _insert_one(connection, None, SuppressionKind.PHONE, phone, STOP_REPLY)
    return True


# -- importing a file ------------------------------------------------------------------------

#: The columns a suppression file may have (header names, any case).
_TARGET_COLUMNS = tuple(SuppressionKind)
_REASON_COLUMN = "reason"
#: Other header names for them, as the list importer accepts `account_key` for `account`.
_ALIASES = {"account_key": "account"}


@dataclass
class _Parsed:
    """The valid targets of a file, first reason kept, in file order."""

    rows: int = 0
    targets: dict[tuple[SuppressionKind, str], str] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _parse_file(
    path: Path, delimiter: str | None, default_reason: str, default_region: str
) -> _Parsed:
    try:
        source = open_source(path, FileFormat.CSV, delimiter)
    except ListFileError as err:
        raise SuppressionError(str(err)) from err
    columns: dict[str, int] = {}
    parsed = _Parsed()
    for index, name in enumerate(source.header):
        folded = name.casefold()
        folded = _ALIASES.get(folded, folded)
        if folded in (*_TARGET_COLUMNS, _REASON_COLUMN):
            if folded in columns:
                raise SuppressionError(f"{path}: the column {folded!r} appears twice in the header")
            columns[folded] = index
        else:
            parsed.ignored.append(name)
    targets = [
        (SuppressionKind(name), columns[name]) for name in _TARGET_COLUMNS if name in columns
    ]
    if not targets:
        found = ", ".join(repr(name) for name in source.header)
        raise SuppressionError(
            f"{path}: the header names none of the columns account, phone, email (found {found})"
        )
    reason_index = columns.get(_REASON_COLUMN)
    with path.open("rb") as handle:
        handle.seek(source.data_offset)
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = source.data_line + data.count(b"\n", 0, err.start)
        raise SuppressionError(f"{path}:{line}: not UTF-8; save the file as UTF-8") from err
    width = len(source.header)
    names = source.header
    for line, cells in csv_records(text, source.data_line, source.delimiter):
        parsed.rows += 1
        if is_csv_error(cells):
            parsed.problems.append(ImportProblem(line, "", f"unreadable record ({cells[1]})"))
            continue
        if len(cells) != width:
            parsed.problems.append(
                ImportProblem(line, "", f"{len(cells)} columns where the header has {width}")
            )
            continue
        problems = len(parsed.problems)
        reason = default_reason
        if reason_index is not None and cells[reason_index].strip():
            try:
                reason = _check_reason(cells[reason_index])
            except _BadCell as err:
                parsed.problems.append(ImportProblem(line, names[reason_index], str(err)))
        found: list[tuple[SuppressionKind, str]] = []
        for kind, index in targets:
            if not cells[index].strip():
                continue
            try:
                found.append((kind, _normalise(kind, cells[index], default_region)))
            except _BadCell as err:
                parsed.problems.append(ImportProblem(line, names[index], str(err)))
        if not found and len(parsed.problems) == problems:
            filled = ", ".join(names[index] for _, index in targets)
            parsed.problems.append(ImportProblem(line, "", f"no target filled in ({filled})"))
        if len(parsed.problems) > problems:
            continue
        for target in found:
            if target in parsed.targets:
                parsed.duplicates += 1
            else:
                parsed.targets[target] = reason
    return parsed


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
    default_reason = _reason(reason)
    path = Path(path)
    async with driver_connection(engine) as connection:
        campaign_id = await _campaign_id(connection, campaign)
        parsed = _parse_file(path, delimiter, default_reason, default_region)
        if parsed.problems:
            raise SuppressionImportError(path, parsed.problems)
        report = ImportReport(
            file=str(path),
            campaign=campaign,
            rows=parsed.rows,
            duplicates_in_file=parsed.duplicates,
            ignored_columns=parsed.ignored,
        )
        by_kind: dict[SuppressionKind, list[tuple[str, str]]] = {}
        for (kind, value), row_reason in parsed.targets.items():
            by_kind.setdefault(kind, []).append((value, row_reason))
        async with connection.transaction():
            for kind, pairs in by_kind.items():
                added = 0
                for start in range(0, len(pairs), _IMPORT_BATCH):
                    batch = pairs[start : start + _IMPORT_BATCH]
                    status = await connection.execute(
                        "INSERT INTO suppressions (campaign_id, kind, value, reason)"
                        " SELECT $1::int, $2::text, t.value, t.reason"
                        " FROM unnest($3::text[], $4::text[]) AS t(value, reason)"
                        " ON CONFLICT DO NOTHING",
                        campaign_id,
                        kind.value,
                        [value for value, _ in batch],
                        [row_reason for _, row_reason in batch],
                    )
                    added += int(status.split()[-1])
                report.added[kind.value] = added
                report.already_present[kind.value] = len(pairs) - added
    return report
