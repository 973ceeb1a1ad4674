"""Malformed list files under `import_list(..., strict=True)`: a clear error, nothing imported.

Every case is a file with at least one thing wrong (often after good rows, so
a half-done import would show). The error must say what is wrong and where:
the physical line (header = line 1) and the column when one cell is to
blame, or the file / header when the file as a whole cannot be read. And the
database must be exactly as before: no list, no contact, no device, no
membership.

Files write `{p}` where the test's account-key prefix goes, so cases never
collide with each other or with the rest of the session's data.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.errors import CsmError
from csm.lists import FileFormat, import_list
from csm.lists.errors import ListFileError, MappingError, StrictImportError
from tests.faults.snapshot import count_where, delete_like, row_counts

LIST_TABLES = ("lists", "contacts", "devices", "list_members")


@dataclass(frozen=True)
class BadFile:
    id: str
    content: bytes
    error: type[CsmError]
    says: tuple[str, ...]  # fragments the message must hold; "{file}" is the file's path
    name: str = "list.csv"
    options: dict[str, object] = field(default_factory=dict)


LONG_KEY = secrets.token_hex(5000)  # 10,000 characters that do not compress

CASES = [
    BadFile("empty_file", b"", ListFileError, ("{file}", "empty", "header")),
    BadFile(
        "header_only_without_column_names",
        b",,,\n",
        ListFileError,
        ("{file}", "the header has no column names"),
    ),
    BadFile(
        "no_account_column",
        b"id,wireless\n{p}1,4155550100\n",
        MappingError,
        ("no account key column", "'id', 'wireless'"),
    ),
    BadFile(
        "duplicate_header_names",
        b"account,email,email\n{p}1,a@example.com,b@example.com\n",
        MappingError,
        ("column 'email' appears twice in the header",),
    ),
    BadFile(
        "wrong_column_count",
        b"account,wireless,email\n{p}1,4155550100,a@example.com\n{p}2,4155550101\n",
        StrictImportError,
        ("line 3", "wrong number of columns: expected 3, found 2"),
    ),
    BadFile(
        # The quote opened on line 2 never closes: read as RFC 4180, lines 3 and 4 would
        # become part of line 2's note, and two contacts would silently vanish.
        "unterminated_quote",
        b'account,wireless,notes\n{p}1,4155550100,"unterminated note\n'
        b"{p}2,4155550101,x\n{p}3,4155550102,y\n",
        CsmError,
        ("line 2",),
    ),
    BadFile(
        "nul_bytes",
        b"account,wireless,notes\n{p}1,4155550100,ok\n{p}2,4155550101,a\x00b\n",
        StrictImportError,
        ("line 3", "column 'notes'", "NUL"),
    ),
    BadFile(
        "binary_garbage",
        b"account,wireless,notes\n{p}1,4155550100,ok\n\x00\x01\x02\xff\xfe\x80junk,\x9c\x00,\xde\xad\n",
        StrictImportError,
        ("line 3", "column 'account'", "not valid UTF-8"),
    ),
    BadFile(
        "invalid_utf8",
        b"account,wireless,notes\n{p}1,4155550100,ok\n{p}2,4155550101,caf\xe9\n",
        StrictImportError,
        ("line 3", "column 'notes'", "not valid UTF-8"),
    ),
    BadFile(
        "bad_phone",
        b"account,wireless\n{p}1,4155550100\n{p}2,555-CALL-NOW\n",
        StrictImportError,
        ("line 3", "column 'wireless'", "phone number"),
    ),
    BadFile(
        "bad_email",
        b"account,email\n{p}1,someone@@example..com\n{p}2,ok@example.com\n",
        StrictImportError,
        ("line 2", "column 'email'", "e-mail address"),
    ),
    BadFile(
        "unknown_time_zone",
        b"account,wireless,timezone\n{p}1,4155550100,America/Chicago\n"
        b"{p}2,4155550101,Mars/Olympus_Mons\n",
        StrictImportError,
        ("line 3", "column 'timezone'", "unknown time zone"),
    ),
    BadFile(
        "formula_like_cell",
        b'account,wireless,notes\n{p}1,4155550100,"=HYPERLINK(""http://x"",""y"")"\n',
        StrictImportError,
        ("line 2", "column 'notes'", "formula-like"),
    ),
    BadFile(
        "duplicate_account_keys",
        b"account,wireless\n{p}1,4155550100\n{p}2,4155550101\n{p}1,4155550102\n",
        StrictImportError,
        ("line 4", "column 'account'", "duplicate account key (first on line 2)"),
    ),
    BadFile(
        "empty_account_key",
        b"account,wireless\n{p}1,4155550100\n  ,4155550101\n",
        StrictImportError,
        ("line 3", "column 'account'", "empty account key"),
    ),
    BadFile(
        "overlong_postal_code",
        b"account,wireless,postal_code\n{p}1,4155550100,94110-0000-0000-00\n",
        StrictImportError,
        ("line 2", "column 'postal_code'", "longer than 16 characters"),
    ),
    BadFile(
        # An account key is "any non-empty text" (docs/lists.md); one too long for the
        # database's unique index must still be a bad row, not a failed import.
        "overlong_account_key",
        b"account,wireless\n{p}1,4155550100\n{p}" + LONG_KEY.encode() + b",4155550101\n",
        StrictImportError,
        ("line 3", "column 'account'"),
    ),
    BadFile(
        "unknown_consent_value",
        b"account,wireless,consent_sms\n{p}1,4155550100,maybe\n",
        StrictImportError,
        ("line 2", "column 'consent_sms'", "yes/no"),
    ),
    BadFile(
        "bom_semicolon_bad_row",
        "\ufeffaccount;wireless;email\n{p}1;4155550100;a@example.com\n"
        "{p}2;4155550101;not-an-address\n".encode(),
        StrictImportError,
        ("line 3", "column 'email'", "e-mail address"),
    ),
    BadFile(
        # CRLF and LF mixed, and a quoted note spanning two physical lines: the bad
        # row is on physical line 5, which is what an editor shows.
        "crlf_mixed",
        b'account,wireless,notes\r\n{p}1,4155550100,"two\r\nlines"\n'
        b"{p}2,4155550101,x\r\n{p}3,12345,y\n",
        StrictImportError,
        ("line 5", "column 'wireless'", "phone number"),
    ),
    BadFile(
        "two_rows_second_bad",
        b"account,wireless,consent_voice\n{p}1,4155550100,yes\n{p}2,4155550101,perhaps\n",
        StrictImportError,
        ("line 3", "column 'consent_voice'", "yes/no"),
    ),
    BadFile(
        "jsonl_bad_line",
        b'{"account": "{p}1", "wireless": "4155550100"}\n'
        b'{"account": "{p}2", "wireless": "4155550101"}\n'
        b'{"account": "{p}3", wireless: 4155550102}\n',
        StrictImportError,
        ("line 3", "not JSON"),
        name="export.txt",
        options={"file_format": FileFormat.JSONL},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_file_is_refused_and_changes_nothing(
    engine: AsyncEngine, tmp_path: Path, case: BadFile
) -> None:
    prefix = f"f{uuid.uuid4().hex[:10]}-"
    list_name = f"{prefix}list"
    path = tmp_path / case.name
    path.write_bytes(case.content.replace(b"{p}", prefix.encode()))
    before = await row_counts(engine, LIST_TABLES)

    try:
        try:
            report = await import_list(engine, path, list_name, strict=True, **case.options)
        except Exception as raised:
            error = raised
        else:
            pytest.fail(f"imported without an error: {report.summary()}")

        assert isinstance(error, case.error), f"{type(error).__name__}: {error}"
        message = str(error)
        for fragment in case.says:
            assert fragment.replace("{file}", str(path)) in message, message
        assert await count_where(engine, "lists", "name", list_name) == 0
        assert await row_counts(engine, LIST_TABLES) == before
    finally:  # what a wrongly accepted file left behind must not disturb later tests
        await delete_like(engine, "lists", "name", list_name)
        await delete_like(engine, "contacts", "account_key", f"{prefix}%")
