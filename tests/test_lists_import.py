"""`import_list` against a real PostgreSQL: bad rows, re-imports, strict, dry runs, formats.

The database is shared by the whole session, so every test works under its
own account-key prefix and list names: the fixture files under
tests/data/lists write `{p}` where the prefix goes.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.lists import import_list, load_mapping, show_list
from csm.lists import store as store_module
from csm.lists.errors import StrictImportError, UnknownListError

DATA = Path(__file__).parent / "data" / "lists"


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


def data_file(name: str, directory: Path, prefix: str) -> Path:
    """A copy of a fixture file with this test's account-key prefix filled in."""
    target = directory / name
    target.write_bytes((DATA / name).read_bytes().replace(b"{p}", prefix.encode()))
    return target


async def contacts(engine: AsyncEngine, prefix: str) -> dict[str, dict[str, Any]]:
    """Every contact under `prefix`, keyed by account (prefix stripped), with its devices."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT id, account_key, timezone, timezone_source, postal_code, "
                    "consent_voice, consent_sms, consent_email, attributes FROM contacts "
                    "WHERE account_key LIKE :p ORDER BY account_key"
                ),
                {"p": prefix + "%"},
            )
        ).mappings()
        found = {row["account_key"][len(prefix) :]: dict(row) for row in rows}
        devices = (
            await connection.execute(
                text(
                    "SELECT c.account_key, d.id, d.position, d.kind, d.value FROM devices d "
                    "JOIN contacts c ON c.id = d.contact_id WHERE c.account_key LIKE :p "
                    "ORDER BY c.account_key, d.position"
                ),
                {"p": prefix + "%"},
            )
        ).all()
    for contact in found.values():
        contact["devices"] = []
    for account_key, ident, position, kind, value in devices:
        found[account_key[len(prefix) :]]["devices"].append((position, kind, value, ident))
    return found


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def device_values(contact: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(position, kind, value) for position, kind, value, _ in contact["devices"]]


async def members(engine: AsyncEngine, list_name: str) -> set[int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT m.contact_id FROM list_members m JOIN lists l ON l.id = m.list_id "
                "WHERE l.name = :name"
            ),
            {"name": list_name},
        )
        return {contact_id for (contact_id,) in rows}


async def list_exists(engine: AsyncEngine, list_name: str) -> bool:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT count(*) FROM lists WHERE name = :name"), {"name": list_name}
        )
        return bool(found)


EXPECTED_REJECTS = [
    (4, "wireless", "bad_phone"),
    (5, "email", "bad_email"),
    (6, "account", "duplicate_account_key"),
    (7, "notes", "formula_like_cell"),
    (8, "account", "empty_account_key"),
    (9, "timezone", "unknown_time_zone"),
    (11, "", "wrong_number_of_columns"),
]


async def test_bad_rows_are_reported_and_the_rest_imported(
    engine: AsyncEngine, tmp_path: Path, prefix: str
) -> None:
    path = data_file("bad_rows.csv", tmp_path, prefix)
    name = f"{prefix}list"
    report = await import_list(engine, path, name)

    assert (report.rows, report.valid, report.rejected) == (12, 5, 7)
    assert (report.imported, report.updated, report.added_to_list) == (5, 0, 5)
    assert [(r.line, r.column, r.code) for r in report.first_rejects] == EXPECTED_REJECTS
    reasons = {r.line: r.reason for r in report.first_rejects}
    assert reasons[6] == "duplicate account key (first on line 2)"
    assert reasons[11] == "wrong number of columns: expected 9, found 2"
    assert report.rejects_by_reason == {code: 1 for _, _, code in EXPECTED_REJECTS}
    assert report.warnings == {"no_time_zone": 1}
    assert report.timezone_sources == {"phone": 2, "file": 1, "postal": 1, "unknown": 1}
    assert report.devices == {"added": 8, "updated": 0, "removed": 0}

    assert report.rejects_file == str(tmp_path / "bad_rows.csv.rejects.csv")
    rows = read_csv(Path(report.rejects_file))
    assert rows[0] == ["line", "column", "reason", *read_csv(DATA / "bad_rows.csv")[0]]
    assert [(int(r[0]), r[1]) for r in rows[1:]] == [
        (line, col) for line, col, _ in EXPECTED_REJECTS
    ]
    assert rows[4][3:] == [f"{prefix}005", "6175550100", "", "", "", "", "", "3", "=cmd()"]
    assert rows[7][3:] == [f"{prefix}008", "6175550104"]  # a short row, written as it was

    found = await contacts(engine, prefix)
    assert sorted(found) == ["001", "002", "007", "009", "010"]
    first = found["001"]
    assert (first["timezone"], first["timezone_source"]) == ("America/Los_Angeles", "phone")
    assert (first["consent_voice"], first["consent_sms"], first["consent_email"]) == (True,) * 3
    assert first["postal_code"] == "94110"
    assert first["attributes"] == {"balance": 12.5, "notes": "vip"}
    assert device_values(first) == [
        (1, "wireless", "+14155550100"),
        (2, "email", "alice@example.com"),
    ]
    second = found["002"]
    assert (second["timezone"], second["timezone_source"]) == ("America/Chicago", "file")
    assert second["consent_sms"] is False
    assert second["attributes"] == {"balance": 7}
    assert device_values(second) == [
        (1, "wireless", "+12125550199"),
        (2, "landline", "+12125550123"),
        (3, "email", "bob@example.org"),
    ]
    assert found["007"]["timezone"] == "America/New_York"
    ninth = found["009"]
    assert (ninth["timezone"], ninth["timezone_source"]) == ("America/New_York", "postal")
    assert ninth["attributes"] == {"balance": -4.5, "notes": "multi\nline, quoted"}
    assert (found["010"]["timezone"], found["010"]["timezone_source"]) == (None, "unknown")
    assert len(await members(engine, name)) == 5

    summary = await show_list(engine, name)
    assert summary.contacts == 5
    assert summary.devices == {"email": 3, "landline": 1, "wireless": 4}
    assert summary.timezone_sources == {"phone": 2, "file": 1, "postal": 1, "unknown": 1}
    assert summary.contacts_without_devices == 0

    # The same file again changes nothing: no new contact, device or membership.
    again = await import_list(engine, path, name)
    assert (again.imported, again.updated, again.changed, again.added_to_list) == (0, 5, 0, 0)
    assert again.devices == {"added": 0, "updated": 0, "removed": 0}
    assert again.rejected == 7
    assert await contacts(engine, prefix) == found
    assert len(await members(engine, name)) == 5


async def test_strict_imports_nothing(engine: AsyncEngine, tmp_path: Path, prefix: str) -> None:
    path = data_file("bad_rows.csv", tmp_path, prefix)
    name = f"{prefix}strict"
    with pytest.raises(StrictImportError, match=r"7 bad rows \(first: line 4, column 'wireless'"):
        await import_list(engine, path, name, strict=True, batch_rows=1)
    assert await contacts(engine, prefix) == {}
    assert not await list_exists(engine, name)
    assert (tmp_path / "bad_rows.csv.rejects.csv").exists()


async def test_dry_run_writes_nothing(engine: AsyncEngine, tmp_path: Path, prefix: str) -> None:
    path = data_file("bad_rows.csv", tmp_path, prefix)
    name = f"{prefix}dry"
    report = await import_list(engine, path, name, dry_run=True)
    assert report.dry_run
    assert (report.imported, report.updated, report.added_to_list) == (5, 0, 5)
    assert report.rejected == 7
    assert await contacts(engine, prefix) == {}
    assert not await list_exists(engine, name)

    await import_list(engine, path, name)
    again = await import_list(engine, path, name, dry_run=True)
    assert (again.imported, again.updated, again.added_to_list) == (0, 5, 0)


async def test_bom_and_semicolons(engine: AsyncEngine, tmp_path: Path, prefix: str) -> None:
    report = await import_list(
        engine, data_file("bom_semicolon.csv", tmp_path, prefix), f"{prefix}bom"
    )
    assert (report.imported, report.rejected) == (2, 0)
    found = await contacts(engine, prefix)
    assert (found["b1"]["timezone"], found["b1"]["timezone_source"]) == (
        "America/Los_Angeles",
        "file",
    )
    assert found["b1"]["attributes"] == {"notes": "one, two"}
    assert device_values(found["b1"]) == [
        (1, "wireless", "+14155550110"),
        (2, "email", "dee@example.com"),
    ]
    assert found["b2"]["timezone"] == "America/Chicago"


async def test_json_lines(engine: AsyncEngine, tmp_path: Path, prefix: str) -> None:
    report = await import_list(engine, data_file("contacts.jsonl", tmp_path, prefix), prefix)
    assert report.format == "jsonl"
    assert (report.rows, report.imported, report.rejected) == (6, 3, 3)
    assert [(r.line, r.column, r.code) for r in report.first_rejects] == [
        (4, "", "unreadable_record"),
        (5, "balance", "unreadable_record"),
        (6, "", "unreadable_record"),
    ]
    assert report.first_rejects[1].reason == "nested JSON values are not supported"
    found = await contacts(engine, prefix)
    assert device_values(found["j1"]) == [
        (1, "wireless", "+14155550120"),
        (2, "email", "eve@example.com"),
    ]
    assert found["j1"]["attributes"] == {"balance": 10, "vip": "true"}
    assert device_values(found["j2"]) == [(1, "landline", "+13125550121")]
    assert found["j2"]["attributes"] == {"balance": 2.5, "vip": "false", "extra": "ignored"}
    assert device_values(found["j4"]) == [(1, "email", "frank@example.com")]
    assert report.rejects_file is not None
    rows = read_csv(Path(report.rejects_file))
    assert rows[0] == ["line", "column", "reason", "record"]
    assert rows[1][3] == "this is not json"


async def test_mapping_file_with_typed_attributes(
    engine: AsyncEngine, tmp_path: Path, prefix: str
) -> None:
    mapping = load_mapping(DATA / "typed.toml")
    report = await import_list(
        engine, data_file("typed.csv", tmp_path, prefix), f"{prefix}typed", mapping
    )
    assert (report.imported, report.rejected) == (2, 4)
    assert [(r.line, r.column, r.code) for r in report.first_rejects] == [
        (4, "Balance", "bad_attribute"),
        (5, "DueDate", "bad_attribute"),
        (6, "Active", "bad_attribute"),
        (7, "Segment", "formula_like_cell"),
    ]
    found = await contacts(engine, prefix)
    first, second = found["t1"], found["t2"]
    assert first["attributes"] == {
        "Balance": 1234.56,
        "due_date": "2026-12-31",
        "Active": True,
        "Segment": "gold",
    }
    assert second["attributes"] == {
        "Balance": -20,
        "due_date": "2027-01-02",
        "Active": False,
        "Segment": "silver",
    }
    assert device_values(first) == [  # the mapping's order: Home, Mobile, EmailAddr
        (1, "landline", "+14155550131"),
        (2, "wireless", "+14155550130"),
        (3, "email", "grace@example.com"),
    ]
    assert (first["consent_voice"], first["consent_sms"], first["consent_email"]) == (
        True,
        False,
        True,
    )
    assert (second["consent_voice"], second["consent_sms"], second["consent_email"]) == (
        False,
        False,
        False,
    )
    assert (second["timezone"], second["timezone_source"]) == ("America/New_York", "file")
    assert (first["timezone"], first["postal_code"]) == ("America/Los_Angeles", "94110")


async def test_auto_attribute_types(engine: AsyncEngine, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "auto.csv"
    path.write_text(
        "account,wireless,score,code,empty\n"
        f"{prefix}1,4155550150,10,007,\n"
        f"{prefix}2,4155550151,-2.5,A1,\n"
        f"{prefix}3,4155550152,,,\n"
    )
    report = await import_list(engine, path, f"{prefix}auto")
    assert report.imported == 3
    found = await contacts(engine, prefix)
    assert found["1"]["attributes"] == {"score": 10, "code": "007"}
    assert found["2"]["attributes"] == {"score": -2.5, "code": "A1"}
    assert found["3"]["attributes"] == {}


async def test_reimport_replaces_devices_and_keeps_ids(
    engine: AsyncEngine, tmp_path: Path, prefix: str
) -> None:
    path = tmp_path / "v1.csv"
    path.write_text(
        "account,wireless,landline,email,consent_sms,tier,timezone\n"
        f"{prefix}k,4155550160,4155550161,a@example.com,no,gold,America/Chicago\n"
    )
    await import_list(engine, path, f"{prefix}A")
    before = (await contacts(engine, prefix))["k"]
    kept = {value: ident for _, _, value, ident in before["devices"]}

    path.write_text(
        f"account,wireless,landline,email,segment\n{prefix}k,4155550161,,b@example.com,new\n"
    )
    report = await import_list(engine, path, f"{prefix}B")
    assert (report.imported, report.updated, report.changed, report.added_to_list) == (0, 1, 1, 1)
    assert report.devices == {"added": 1, "updated": 1, "removed": 2}
    after = (await contacts(engine, prefix))["k"]
    assert device_values(after) == [(1, "wireless", "+14155550161"), (2, "email", "b@example.com")]
    assert after["devices"][0][3] == kept["+14155550161"]  # same device, same id
    assert after["id"] == before["id"]
    assert after["consent_sms"] is False  # a file without the column leaves consent as it was
    assert after["attributes"] == {"tier": "gold", "segment": "new"}  # attributes merge
    # A zone from a file is not replaced by one inferred from the phone.
    assert (after["timezone"], after["timezone_source"]) == ("America/Chicago", "file")
    # One contact, on both lists.
    assert await members(engine, f"{prefix}A") == await members(engine, f"{prefix}B")
    assert len(await contacts(engine, prefix)) == 1


async def test_failure_midway_leaves_everything_as_before(
    engine: AsyncEngine, tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{prefix}L"
    path = data_file("bad_rows.csv", tmp_path, prefix)
    await import_list(engine, path, name)
    before = await contacts(engine, prefix)
    before_members = await members(engine, name)

    changed = tmp_path / "changed.csv"
    changed.write_text(
        "account,wireless,email,tier\n"
        + "".join(f"{prefix}{n:03d},41555502{n:02d},new{n}@example.com,x\n" for n in range(1, 30))
    )
    real_write = store_module.write
    calls = 0

    async def failing_write(connection: Any, list_ident: int) -> store_module.WriteCounts:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("database went away")
        return await real_write(connection, list_ident)

    monkeypatch.setattr(store_module, "write", failing_write)
    with pytest.raises(RuntimeError, match="went away"):
        await import_list(engine, changed, name, batch_rows=5, chunk_bytes=64, workers=1)
    assert calls == 3
    assert await contacts(engine, prefix) == before
    assert await members(engine, name) == before_members


async def test_parallel_workers_agree_with_one_process(
    engine: AsyncEngine, tmp_path: Path, prefix: str
) -> None:
    """Many small chunks over two worker processes give exactly the single-process answer."""
    lines = ["account,wireless,email,notes"]
    for n in range(400):
        phone = "12345" if n % 37 == 0 else f"(415) 555-{n:04d}"
        notes = '"two\nlines"' if n % 11 == 0 else f"n{n}"
        key = f"{prefix}{n % 390}"  # the last ten repeat earlier keys
        lines.append(f"{key},{phone},p{n}@example.com,{notes}")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")

    single = await import_list(engine, path, f"{prefix}P", dry_run=True, workers=1)
    parallel = await import_list(
        engine, path, f"{prefix}P", dry_run=True, workers=2, chunk_bytes=512, batch_rows=50
    )
    for report in (single, parallel):
        report.seconds = 0.0
    assert parallel == single
    assert single.rejects_by_reason == {"bad_phone": 11, "duplicate_account_key": 10}

    report = await import_list(
        engine, path, f"{prefix}P", workers=2, chunk_bytes=512, batch_rows=50
    )
    assert report.imported == 400 - 21
    assert len(await contacts(engine, prefix)) == 400 - 21


async def test_show_unknown_list(engine: AsyncEngine) -> None:
    with pytest.raises(UnknownListError, match="no list named 'no such list'"):
        await show_list(engine, "no such list")


async def test_trailing_delimiter_and_header_only(
    engine: AsyncEngine, tmp_path: Path, prefix: str
) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text(f"account,wireless,\n{prefix}1,4155550180,\n")
    report = await import_list(engine, path, f"{prefix}trailing")
    assert (report.imported, report.rejected) == (1, 0)
    assert (await contacts(engine, prefix))["1"]["attributes"] == {}

    empty = tmp_path / "empty.csv"
    empty.write_text("account,wireless\n")
    report = await import_list(engine, empty, f"{prefix}empty")
    assert (report.rows, report.imported) == (0, 0)
    assert (await show_list(engine, f"{prefix}empty")).contacts == 0
