"""`csm lists import` and `csm lists show` as a user runs them: a subprocess, real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

CSM = [sys.executable, "-m", "csm.cli"]
DATA = Path(__file__).parent / "data" / "lists"


async def csm(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture
def prefix() -> str:
    return f"c{uuid.uuid4().hex[:10]}-"


async def test_import_json_report_and_show(database_url: str, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes((DATA / "bad_rows.csv").read_bytes().replace(b"{p}", prefix.encode()))
    name = f"{prefix}cli"

    result = await csm(database_url, "lists", "import", str(path), "--list", name, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar without a terminal
    report = json.loads(result.stdout)
    assert (report["imported"], report["updated"], report["rejected"]) == (5, 0, 7)
    assert report["list"] == name
    assert report["warnings"] == {"count": 1, "by_reason": {"no_time_zone": 1}}
    assert report["rejects_file"] == str(tmp_path / "list.csv.rejects.csv")
    assert report["first_rejects"][0] == {
        "line": 4,
        "column": "wireless",
        "code": "bad_phone",
        "reason": "not a valid phone number",
    }

    shown = await csm(database_url, "lists", "show", name, "--json")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["contacts"] == 5
    assert summary["devices"] == {"email": 3, "landline": 1, "wireless": 4}
    assert summary["timezone_sources"] == {"phone": 2, "file": 1, "postal": 1, "unknown": 1}

    # Readable output: a summary with the first reasons; and a re-import imports nothing new.
    again = await csm(database_url, "lists", "import", str(path), "--list", name)
    assert again.returncode == 0, again.stderr
    assert "imported 0 new contacts, 5 already known (0 changed), 7 rejected" in again.stdout
    assert "rejected line 4, column 'wireless': not a valid phone number" in again.stdout

    table = await csm(database_url, "lists", "show", name)
    assert table.returncode == 0 and "contacts" in table.stdout


async def test_flags_strict_and_dry_run(database_url: str, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Cust|Cell|Mail|Owed\n"
        f"{prefix}1|415 555 0170|x@example.com|12\n"
        f"{prefix}2|12|y@example.com|3\n"
    )
    common = ["lists", "import", str(path), "--list", f"{prefix}flags", "--account", "Cust"]
    common += ["--phone", "Cell:wireless", "--email", "Mail", "--attribute", "Owed:number"]

    strict = await csm(database_url, *common, "--strict", "--json")
    assert strict.returncode == 1
    assert strict.stderr.startswith("csm: error: 1 bad rows (first: line 3, column 'Cell'")
    assert strict.stdout == ""

    dry = await csm(database_url, *common, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["imported"] == 1
    assert json.loads(dry.stdout)["dry_run"] is True

    rejects = tmp_path / "bad.csv"
    done = await csm(database_url, *common, "--rejects", str(rejects), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rejects_file"] == str(rejects)
    assert rejects.read_text().splitlines()[1].startswith("3,Cell,not a valid phone number,")


async def test_mapping_file_option(database_url: str, tmp_path: Path, prefix: str) -> None:
    path = tmp_path / "typed.csv"
    path.write_bytes((DATA / "typed.csv").read_bytes().replace(b"{p}", prefix.encode()))
    result = await csm(
        database_url,
        "lists",
        "import",
        str(path),
        "--list",
        f"{prefix}typed",
        "--mapping",
        str(DATA / "typed.toml"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == 2


async def test_clear_errors(database_url: str, tmp_path: Path) -> None:
    missing = await csm(
        database_url, "lists", "import", str(tmp_path / "nope.csv"), "--list", "x", "--json"
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"csm: error: no such file: {tmp_path / 'nope.csv'}"

    unknown = await csm(database_url, "lists", "show", f"no-such-list-{uuid.uuid4().hex}")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("csm: error: no list named 'no-such-list-")
    assert "Traceback" not in unknown.stderr

    no_account = tmp_path / "noaccount.csv"
    no_account.write_text("id,phone\n1,4155550100\n")
    result = await csm(database_url, "lists", "import", str(no_account), "--list", "x")
    assert result.returncode == 1
    assert "no account key column" in result.stderr

    bad_mapping = tmp_path / "m.toml"
    bad_mapping.write_text('acount = "id"\n')
    result = await csm(
        database_url,
        "lists",
        "import",
        str(no_account),
        "--list",
        "x",
        "--mapping",
        str(bad_mapping),
    )
    assert result.returncode == 1
    assert "acount: Extra inputs are not permitted" in result.stderr
