"""Validating one chunk of a list file into COPY data for the staging tables.

This is the hot loop of an import, run in worker processes: it reads the
chunk's records, normalises and checks every cell, and writes the good rows
straight into PostgreSQL's COPY text format, so the main process only
forwards bytes to the database. Bad rows come back as `Reject`s with line,
column and reason; row order within the chunk is kept.

Cells are stripped of surrounding white space. An empty cell says nothing:
it never erases a stored value (see docs/lists.md), except that a contact's
devices are always exactly the file's.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from csm.lists import cells as cellmod
from csm.lists import emails
from csm.lists.cells import CellError, is_formula_like
from csm.lists.mapping import AttributePlan, AttributeType, ColumnPlan, FileFormat
from csm.lists.phones import LineType, PhoneError, PhoneNormaliser
from csm.lists.reader import Chunk, Source, decode_chunk
from csm.lists.reader import read_chunk as read_chunk_bytes
from csm.lists.records import Record, RowError, csv_rows, jsonl_rows
from csm.lists.zones import ZIP_REGIONS, canonical_zone, zip_zone
from csm.vocabulary import DeviceKind

#: Reject reason codes of a row's cells, for the report's breakdown (those of a whole
#: record, and the warning for ignored JSON fields, are in csm.lists.records).
EMPTY_ACCOUNT = "empty_account_key"
DUPLICATE_ACCOUNT = "duplicate_account_key"
BAD_PHONE = "bad_phone"
BAD_EMAIL = "bad_email"
UNKNOWN_ZONE = "unknown_time_zone"
BAD_CONSENT = "bad_consent"
BAD_ATTRIBUTE = "bad_attribute"
FORMULA = "formula_like_cell"
BAD_TEXT = "unreadable_text"
TOO_LONG = "value_too_long"

#: Warning codes.
NO_ZONE = "no_time_zone"
DUPLICATE_DEVICE = "duplicate_device"
KIND_MISMATCH = "device_kind_mismatch"

#: Lengths of the contacts table's bounded columns.
MAX_POSTAL_CODE = 16
#: An account key is indexed (unique), and PostgreSQL refuses index entries over about 2.7
#: kB; real keys are short identifiers, so a generous cap far below that.
MAX_ACCOUNT_KEY = 200

_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_FORMULA_FIRST = frozenset("=+-@\t\r")
_CONTRADICTS = {DeviceKind.WIRELESS: LineType.FIXED, DeviceKind.LANDLINE: LineType.MOBILE}
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NULL = "\\N"
_NO_CONSENT = "\t".join([_NULL] * 3)


@dataclass(frozen=True)
class Reject:
    """A bad row: where it is, what is wrong, and the record as it was in the file."""

    line: int
    column: str
    code: str
    reason: str
    raw: list[str] | str
    account_key: str = ""


@dataclass
class ChunkResult:
    """What a worker sends back for one chunk."""

    index: int
    rows: int = 0
    bytes: int = 0
    contacts: bytes = b""
    devices: bytes = b""
    keys: list[str] = field(default_factory=list)  # account key of each row that has one...
    key_lines: list[int] = field(default_factory=list)  # ...and its line, in file order
    rejects: list[Reject] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)


def copy_text(value: str) -> str:
    """A value escaped for COPY's text format."""
    if _COPY_SPECIAL.search(value) is None:
        return value
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


class ChunkValidator:
    """Validates records for one column plan; built once per worker process."""

    def __init__(self, source: Source, plan: ColumnPlan) -> None:
        self.source = source
        self.plan = plan
        self.width = len(plan.header)
        self.phones = PhoneNormaliser(plan.default_region)
        self.zip_zones = plan.default_region in ZIP_REGIONS
        self.account_column = plan.header[plan.account]
        #: (position, column, kind, is e-mail, the line type that contradicts the kind)
        self.devices = [
            (d.index, d.column, d.kind.value, d.kind is DeviceKind.EMAIL, _CONTRADICTS.get(d.kind))
            for d in plan.devices
        ]
        self.flags = [plan.consent_voice, plan.consent_sms, plan.consent_email]
        self.no_flags = all(index is None for index in self.flags)
        self.attributes = list(plan.attributes)
        self.header_index = {name: i for i, name in enumerate(plan.header)}
        self.numeric: frozenset[str] = frozenset()
        self.attribute_kinds = self._attribute_kinds()

    def set_numeric(self, numeric: frozenset[str]) -> None:
        """Which auto-typed attributes are numbers: every non-empty value in the file is one."""
        if numeric != self.numeric:
            self.numeric = numeric
            self.attribute_kinds = self._attribute_kinds()

    def _attribute_kinds(self) -> list[tuple[AttributePlan, str, AttributeType]]:
        kinds = []
        for attribute in self.attributes:
            kind = attribute.type
            if kind is AttributeType.AUTO:
                numeric = attribute.key in self.numeric
                kind = AttributeType.NUMBER if numeric else AttributeType.TEXT
            kinds.append((attribute, json.dumps(attribute.key, ensure_ascii=False), kind))
        return kinds

    # -- chunks ------------------------------------------------------------------------------

    def run(self, chunk: Chunk) -> ChunkResult:
        data = read_chunk_bytes(self.source, chunk)
        text, has_bad_bytes = decode_chunk(data)
        # Only these can hold what PostgreSQL refuses (NUL, lone surrogates): check cell by cell.
        careful = has_bad_bytes or "\x00" in text or self.source.format is FileFormat.JSONL
        result = ChunkResult(index=chunk.index, bytes=chunk.length)
        contact_lines: list[str] = []
        device_lines: list[str] = []
        for line, cells, raw, problem in self._records(text, chunk.first_line, result.warnings):
            result.rows += 1
            key = ""
            try:
                if problem is not None:
                    raise problem
                assert cells is not None
                if careful:
                    self._check_text(cells)
                key = self._row(line, cells, result, contact_lines, device_lines)
            except RowError as err:
                if not key and cells is not None and len(cells) > self.plan.account:
                    key = cells[self.plan.account].strip()
                result.rejects.append(Reject(line, err.column, err.code, err.reason, raw, key))
            if key:
                result.keys.append(key)
                result.key_lines.append(line)
        if contact_lines:
            result.contacts = ("\n".join(contact_lines) + "\n").encode()
        if device_lines:
            result.devices = ("\n".join(device_lines) + "\n").encode()
        return result

    def _records(self, text: str, first_line: int, warnings: Counter[str]) -> Iterator[Record]:
        if self.source.format is FileFormat.JSONL:
            return jsonl_rows(text, first_line, self.header_index, self.width, warnings)
        return csv_rows(text, first_line, self.source.delimiter, self.width)

    def _check_text(self, cells: list[str]) -> None:
        """Only for chunks with invalid UTF-8 or NUL characters, which PostgreSQL refuses."""
        for index, cell in enumerate(cells):
            if _SURROGATE.search(cell):
                raise RowError(self.plan.header[index], BAD_TEXT, "not valid UTF-8 text")
            if "\x00" in cell:
                raise RowError(self.plan.header[index], BAD_TEXT, "contains a NUL character")

    def non_numeric(self, chunk: Chunk) -> set[str]:
        """Auto-typed attributes with a non-empty cell that is not a number in this chunk.

        A first pass over the file decides each auto column's type, so that the
        second pass can write final values (numbers as JSON numbers) at once.
        """
        auto = [(a.index, a.key) for a in self.attributes if a.type is AttributeType.AUTO]
        found: set[str] = set()
        if not auto:
            return found
        text, _ = decode_chunk(read_chunk_bytes(self.source, chunk))
        is_number = cellmod.is_number
        for _, cells, _, _ in self._records(text, chunk.first_line, Counter()):
            if cells is None or len(cells) != self.width:  # unreadable, or wrong width
                continue
            for index, key in auto:
                cell = cells[index].strip()
                if cell and key not in found and not is_number(cell):
                    found.add(key)
            if len(found) == len(auto):
                break
        return found

    # -- one row -----------------------------------------------------------------------------

    def _row(
        self,
        line: int,
        cells: list[str],
        result: ChunkResult,
        contact_lines: list[str],
        device_lines: list[str],
    ) -> str:
        """Check one record and append its COPY lines; returns its account key."""
        plan = self.plan
        key = cells[plan.account].strip()
        if not key:
            raise RowError(self.account_column, EMPTY_ACCOUNT, "empty account key")
        if len(key) > MAX_ACCOUNT_KEY:
            raise RowError(
                self.account_column,
                TOO_LONG,
                f"account key longer than {MAX_ACCOUNT_KEY} characters",
            )
        if key[0] in _FORMULA_FIRST and is_formula_like(key):
            raise RowError(self.account_column, FORMULA, _FORMULA_REASON)

        values: list[str] = []
        kinds: list[str] = []
        phone_zone: str | None = None
        first_phone = True
        for index, column, kind, is_email, contradiction in self.devices:
            cell = cells[index].strip()
            if not cell:
                continue
            if is_email:
                if cell[0] in _FORMULA_FIRST and is_formula_like(cell):
                    raise RowError(column, FORMULA, _FORMULA_REASON)
                try:
                    value = emails.normalise(cell)
                except emails.EmailError as err:
                    raise RowError(column, BAD_EMAIL, str(err)) from None
            else:
                try:
                    value, zone, line_type = self.phones.normalise(cell)
                except PhoneError as err:
                    raise RowError(column, BAD_PHONE, str(err)) from None
                if first_phone:
                    phone_zone = zone
                    first_phone = False
                if line_type is contradiction:
                    result.warnings[KIND_MISMATCH] += 1
            if value in values:
                result.warnings[DUPLICATE_DEVICE] += 1
                continue
            values.append(value)
            kinds.append(kind)

        zone = None
        zone_source = "unknown"
        if plan.timezone is not None:
            cell = cells[plan.timezone].strip()
            if cell:
                zone = canonical_zone(cell)
                if zone is None:
                    raise RowError(plan.header[plan.timezone], UNKNOWN_ZONE, "unknown time zone")
                zone_source = "file"
        postal = ""
        if plan.postal_code is not None:
            postal = cells[plan.postal_code].strip()
            if len(postal) > MAX_POSTAL_CODE:
                raise RowError(
                    plan.header[plan.postal_code],
                    TOO_LONG,
                    f"postal code longer than {MAX_POSTAL_CODE} characters",
                )
            if postal and postal[0] in _FORMULA_FIRST and is_formula_like(postal):
                raise RowError(plan.header[plan.postal_code], FORMULA, _FORMULA_REASON)
        if zone is None:
            if phone_zone is not None:
                zone, zone_source = phone_zone, "phone"
            elif postal and self.zip_zones and (found := zip_zone(postal)) is not None:
                zone, zone_source = found, "postal"
            else:
                result.warnings[NO_ZONE] += 1

        if self.no_flags:
            consent = _NO_CONSENT
        else:
            consent = "\t".join(self._flag(cells, index) for index in self.flags)
        attributes = self._attributes(cells) if self.attributes else "{}"
        postal = copy_text(postal) if postal else _NULL
        contact_lines.append(
            f"{line}\t{copy_text(key)}\t{zone or _NULL}\t{zone_source}\t{postal}\t{consent}\t"
            f"{attributes}"
        )
        for position, (kind, value) in enumerate(zip(kinds, values, strict=True), start=1):
            device_lines.append(f"{line}\t{position}\t{kind}\t{copy_text(value)}")
        return key

    def _flag(self, cells: list[str], index: int | None) -> str:
        if index is None:
            return _NULL
        cell = cells[index].strip()
        if not cell:
            return _NULL
        try:
            return "t" if cellmod.parse_flag(cell) else "f"
        except CellError as err:
            raise RowError(self.plan.header[index], BAD_CONSENT, str(err)) from None

    def _attributes(self, cells: list[str]) -> str:
        """The row's attributes as a JSON object, in COPY text; empty cells are left out."""
        parts: list[str] = []
        for attribute, key_json, kind in self.attribute_kinds:
            cell = cells[attribute.index].strip()
            if not cell:
                continue
            try:
                if kind is AttributeType.TEXT:
                    value = _json_string(cellmod.check_text(cell))
                elif kind is AttributeType.NUMBER:
                    value = _json_number(cellmod.parse_number(cell))
                elif kind is AttributeType.DATE:
                    value = '"' + cellmod.parse_date(cell, attribute.date_format) + '"'
                else:
                    value = "true" if cellmod.parse_flag(cell) else "false"
            except CellError as err:
                code = FORMULA if cellmod.is_formula_like(cell) else BAD_ATTRIBUTE
                raise RowError(attribute.column, code, str(err)) from None
            parts.append(key_json + ":" + value)
        if not parts:
            return "{}"
        return copy_text("{" + ",".join(parts) + "}")


_JSON_ESCAPES = re.compile(r'[\x00-\x1f"\\]')


def _json_string(value: str) -> str:
    """A JSON string literal; json.dumps only when something needs escaping."""
    if _JSON_ESCAPES.search(value) is None:
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False)


def _json_number(value: int | float) -> str:
    """JSON's spelling of a finite number, which is Python's repr."""
    return repr(value)


_FORMULA_REASON = "formula-like text (starts with =, +, - or @): CSV injection risk"

# -- worker process entry points -------------------------------------------------------------

_validator: ChunkValidator | None = None


def init_worker(source: Source, plan: ColumnPlan) -> None:
    """Pool initializer: build the validator (compiled patterns, caches) once per process."""
    global _validator
    _validator = ChunkValidator(source, plan)


def run_chunk(chunk: Chunk, numeric: frozenset[str]) -> ChunkResult:
    assert _validator is not None, "init_worker was not called"
    _validator.set_numeric(numeric)
    return _validator.run(chunk)


def scan_chunk(chunk: Chunk) -> set[str]:
    assert _validator is not None, "init_worker was not called"
    return _validator.non_numeric(chunk)
