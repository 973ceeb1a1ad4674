"""Reading list files: format, header, delimiter, and splitting into chunks of whole records.

Chunks are byte ranges that start and end on record boundaries, so each
worker process reads and decodes its own range: the main process never
parses rows, and nothing but a few integers crosses a process boundary on
the way in.

For CSV a newline ends a record unless it sits inside a quoted field, and in
well-formed CSV (quotes only around fields, doubled inside them) that is the
case exactly when an odd number of quote characters precede it; a split is
only made at a newline with an even count. A file with a stray quote in an
unquoted field keeps an odd count from there on and simply is not split
further. JSON Lines never has a raw newline inside a record.

Line numbers are physical lines of the file, the header being line 1, so a
user can find a rejected row in any editor.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from csm.lists.errors import ListFileError
from csm.lists.mapping import FileFormat

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 64 * 1024
#: Large enough for any sane cell; csv's default of 128 KiB rejects some notes fields.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Source:
    """An opened list file: what it is and where its data rows start."""

    path: Path
    format: FileFormat
    header: tuple[str, ...]
    delimiter: str
    data_offset: int  # byte offset of the first data record
    data_line: int  # physical line number of that byte offset
    size: int


@dataclass(frozen=True)
class Chunk:
    """A byte range of whole records, and the physical line number it starts at."""

    index: int
    offset: int
    length: int
    first_line: int


def detect_format(path: Path, explicit: FileFormat | None) -> FileFormat:
    if explicit is not None:
        return explicit
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return FileFormat.JSONL
    return FileFormat.CSV


def open_source(path: Path, file_format: FileFormat | None, delimiter: str | None) -> Source:
    """Check the file exists and is readable; read its header and pick the delimiter."""
    if not path.exists():
        raise ListFileError(f"no such file: {path}")
    if not path.is_file():
        raise ListFileError(f"not a file: {path}")
    try:
        with path.open("rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
            size = path.stat().st_size
    except OSError as err:
        raise ListFileError(f"cannot read {path}: {err.strerror}") from err
    start = len(codecs.BOM_UTF8) if sample.startswith(codecs.BOM_UTF8) else 0
    fmt = detect_format(path, file_format)
    if fmt is FileFormat.JSONL:
        return _open_jsonl(path, sample, start, size)
    return _open_csv(path, sample, start, size, delimiter)


def _decode(data: bytes, path: Path, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ListFileError(
            f"{path}: the {what} is not UTF-8 (byte {err.start}); save the file as UTF-8"
        ) from err


def _header_end(sample: bytes, start: int, size: int) -> tuple[int, int]:
    """Byte offset after the header record, and the number of physical lines it spans."""
    position = start
    lines = 0
    quotes = 0
    while True:
        newline = sample.find(b"\n", position)
        if newline < 0:
            if len(sample) < size and len(sample) >= _SAMPLE_BYTES:
                raise ListFileError("the header line is longer than 64 KiB")
            return len(sample), lines + 1
        quotes += sample.count(b'"', position, newline)
        lines += 1
        position = newline + 1
        if quotes % 2 == 0:
            return position, lines


def _open_csv(path: Path, sample: bytes, start: int, size: int, delimiter: str | None) -> Source:
    end, header_lines = _header_end(sample, start, size)
    text = _decode(sample[start:end], path, "header")
    if not text.strip():
        raise ListFileError(f"{path} is empty: a CSV list needs a header line")
    chosen = delimiter or sniff_delimiter(text, sample[end:])
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=chosen))
    header = [column.strip() for column in header]
    if not any(header):
        raise ListFileError(f"{path}: the header has no column names")
    return Source(path, FileFormat.CSV, tuple(header), chosen, end, header_lines + 1, size)


def sniff_delimiter(header_text: str, following: bytes) -> str:
    """The delimiter among , ; tab | that splits the header widest and the next rows alike."""
    sample_rows = following[:16384].decode("utf-8", errors="replace").splitlines()[:20]
    best = (False, -1, -1)
    chosen = ","
    for candidate in DELIMITERS:
        header = next(csv.reader([header_text], delimiter=candidate), [])
        width = len(header)
        rows = list(csv.reader(sample_rows, delimiter=candidate))
        agreeing = sum(1 for row in rows if len(row) == width)
        score = (width > 1, agreeing, width)
        if score > best:
            best, chosen = score, candidate
    return chosen


def _open_jsonl(path: Path, sample: bytes, start: int, size: int) -> Source:
    """The columns of a JSON Lines file: the keys of the objects in its first 64 KiB.

    Records may leave keys out, so one record is not enough to know them. Keys
    that only appear later are ignored (and counted as a warning) unless a
    mapping names them.
    """
    keys: dict[str, None] = {}
    line = 0
    end = len(sample) if len(sample) >= size else sample.rfind(b"\n") + 1 or len(sample)
    for raw in sample[start:end].split(b"\n"):
        line += 1
        text = _decode(raw, path, f"line {line}").strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            if not keys:
                raise ListFileError(
                    f"{path}: line {line} is not JSON ({err.msg}); JSON Lines needs one object "
                    "a line"
                ) from err
            continue  # a bad record later on is that record's problem
        if isinstance(record, dict):
            keys.update(dict.fromkeys(record))
        elif not keys:
            raise ListFileError(f"{path}: line {line} is not a JSON object")
    if not keys:
        raise ListFileError(f"{path} has no records")
    return Source(path, FileFormat.JSONL, tuple(keys), "", start, 1, size)


def plan_chunks(source: Source, target_bytes: int) -> Iterator[Chunk]:
    """Byte ranges of about `target_bytes` that begin and end on record boundaries."""
    split_on_quotes = source.format is FileFormat.CSV
    index = 0
    offset = source.data_offset
    line = source.data_line
    with source.path.open("rb") as handle:
        while offset < source.size:
            handle.seek(offset)
            block = handle.read(target_bytes)
            if not block:
                break
            split = _split_point(block, split_on_quotes)
            while split is None and len(block) < source.size - offset:
                more = handle.read(target_bytes)
                if not more:
                    break
                block += more
                split = _split_point(block, split_on_quotes)
            length = len(block) if split is None else split
            yield Chunk(index, offset, length, line)
            line += block.count(b"\n", 0, length)
            offset += length
            index += 1


def _split_point(block: bytes, split_on_quotes: bool) -> int | None:
    """Just past the last newline of `block` that ends a record, or None."""
    newline = block.rfind(b"\n")
    if not split_on_quotes:
        return None if newline < 0 else newline + 1
    quotes = block.count(b'"')
    while newline >= 0:
        if (quotes - block.count(b'"', newline)) % 2 == 0:
            return newline + 1
        newline = block.rfind(b"\n", 0, newline)
    return None


def read_chunk(source: Source, chunk: Chunk) -> bytes:
    with source.path.open("rb") as handle:
        handle.seek(chunk.offset)
        return handle.read(chunk.length)


def decode_chunk(data: bytes) -> tuple[str, bool]:
    """The chunk's text, and whether it has bytes that are not UTF-8 (kept as surrogates)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape"), True


class _Lines:
    """The physical lines of a text, noting when the csv reader asked past the last one."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text, newline=""))
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise


def csv_records(text: str, first_line: int, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each non-blank record; csv errors become a one-cell marker row.

    A quote that opens a field and never closes is such an error, on the line where
    it opened: read as the csv module does by default (non-strict), the rest of the
    text would silently become that one field, and the rows in it would vanish. The
    reader only asks for a line past the last one when the text ends inside a quoted
    field (a record ends at its last line's end otherwise), which is how it shows.
    """
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    consumed = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield first_line + consumed, [_CSV_ERROR, str(err)]
            consumed = reader.line_num
            continue
        if lines.exhausted:
            start, end = first_line + consumed, first_line + reader.line_num - 1
            swallowed = f"line {start}" if end == start else f"lines {start} to {end}"
            reason = f"a quoted field in this record never closes ({swallowed} not imported)"
            yield start, [_CSV_ERROR, reason]
            return
        if cells:
            yield first_line + consumed, cells
        consumed = reader.line_num


#: Marks a record the csv module could not read (never a real first cell: it has a NUL).
_CSV_ERROR = "\x00csv-error"


def is_csv_error(cells: list[str]) -> bool:
    return len(cells) == 2 and cells[0] == _CSV_ERROR


def jsonl_records(text: str, first_line: int) -> Iterator[tuple[int, str]]:
    """(line, text) of each non-blank line."""
    for number, line in enumerate(text.split("\n"), start=first_line):
        if line.strip():
            yield number, line


def records_at(source: Source, lines: set[int]) -> dict[int, list[str] | str]:
    """The raw records that start on `lines`, re-read from the file (for the rejects file)."""
    found: dict[int, list[str] | str] = {}
    if not lines:
        return found
    with source.path.open("rb") as handle:
        handle.seek(source.data_offset)
        data = handle.read()
    text, _ = decode_chunk(data)
    if source.format is FileFormat.JSONL:
        for number, line in jsonl_records(text, source.data_line):
            if number in lines:
                found[number] = line
    else:
        for number, cells in csv_records(text, source.data_line, source.delimiter):
            if number in lines:
                found[number] = cells
    return found
