"""`csm campaigns` and `csm strategy` as a user runs them: subprocesses on the test database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

from csm.campaigns import campaign_today

CSM = [sys.executable, "-m", "csm.cli"]
EXAMPLES = Path(__file__).parent.parent / "examples"

BAD_STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "morning voice"
channel = "voice"
[[passes]]
name = "retry no answers"
channel = "voice"
filter = "atempts < 3"
"""


async def csm(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # rich tables wrap at 80 columns otherwise
    if database_url:
        env["DATABASE_URL"] = database_url
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_validate_prints_passes_or_every_problem(tmp_path: Path) -> None:
    good = await csm("strategy", "validate", str(EXAMPLES / "payment_reminder.toml"))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("valid: 4 passes")
    assert "retry no answers" in good.stdout

    bad_file = tmp_path / "bad.toml"
    bad_file.write_text(BAD_STRATEGY + 'fiter = "x"\n')
    bad = await csm("strategy", "validate", str(bad_file))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        f"csm: error: {bad_file}: 2 problems:",
        "  pass 2 'retry no answers': filter: unknown field 'atempts' at column 1 "
        "(did you mean 'attempts'?)",
        "  pass 2 'retry no answers': unknown key 'fiter' (did you mean 'filter'?)",
    ]

    as_json = await csm("strategy", "validate", str(bad_file), "--json")
    assert as_json.returncode == 1
    shown = json.loads(as_json.stdout)
    assert shown["valid"] is False and len(shown["issues"]) == 2
    assert shown["issues"][0]["location"] == "pass 2 'retry no answers': filter"

    good_json = await csm("strategy", "validate", str(EXAMPLES / "recovery.toml"), "--json")
    assert good_json.returncode == 0
    assert json.loads(good_json.stdout)["strategy"]["timezone"] == "America/Los_Angeles"

    missing = await csm("strategy", "validate", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("csm: error: cannot read strategy file")
    assert len(missing.stderr.splitlines()) == 1


async def test_create_strategy_show_list(database_url: str, tmp_path: Path) -> None:
    name = unique("reminders")
    created = await csm(
        "campaigns",
        "create",
        name,
        "--strategy",
        str(EXAMPLES / "payment_reminder.toml"),
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    today = campaign_today("America/Chicago")
    assert f"strategy version 1 with 4 passes, effective {today}" in created.stdout

    added = await csm(
        "campaigns",
        "strategy",
        name,
        "-s",
        str(EXAMPLES / "collections_under_caps.toml"),
        database_url=database_url,
    )
    assert added.returncode == 0, added.stderr
    assert f"version 2 with 3 passes, effective {today + timedelta(days=1)}" in added.stdout

    shown = await csm("campaigns", "show", name, "--json", database_url=database_url)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["timezone"] == "America/Chicago"
    versions = [
        (v["version"], date.fromisoformat(v["effective_from"])) for v in details["versions"]
    ]
    assert versions == [(1, today), (2, today + timedelta(days=1))]
    assert details["version_in_force"] == 1
    assert [p["name"] for p in details["strategy"]["passes"]][:2] == [
        "morning voice",
        "retry no answers",
    ]

    table = await csm("campaigns", "show", name, database_url=database_url)
    assert table.returncode == 0, table.stderr
    for text in ("America/Chicago", "in force", "pending", "morning voice", "reached"):
        assert text in table.stdout

    listed = await csm("campaigns", "list", "--json", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    (mine,) = [c for c in json.loads(listed.stdout) if c["name"] == name]
    assert mine["versions"] == 2 and mine["version_in_force"] == 1
    listed_table = await csm("campaigns", "list", database_url=database_url)
    assert listed_table.returncode == 0 and name in listed_table.stdout

    again = await csm(
        "campaigns",
        "create",
        name,
        "--strategy",
        str(EXAMPLES / "recovery.toml"),
        database_url=database_url,
    )
    assert again.returncode == 1
    assert again.stderr == f"csm: error: campaign '{name}' exists already\n"


async def test_bad_strategy_file_creates_nothing(database_url: str, tmp_path: Path) -> None:
    name = unique("never")
    bad_file = tmp_path / "one_mistake.toml"
    bad_file.write_text(BAD_STRATEGY)
    result = await csm(
        "campaigns", "create", name, "--strategy", str(bad_file), database_url=database_url
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"csm: error: {bad_file}: pass 2 'retry no answers': filter: unknown field 'atempts' "
        "at column 1 (did you mean 'attempts'?)\n"
    )
    shown = await csm("campaigns", "show", name, database_url=database_url)
    assert shown.returncode == 1
    assert shown.stderr.startswith(f"csm: error: unknown campaign '{name}'")


async def test_unknown_campaign_is_one_clear_line(database_url: str) -> None:
    name = unique("recovery")
    created = await csm(
        "campaigns",
        "create",
        name,
        "--strategy",
        str(EXAMPLES / "recovery.toml"),
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    typo = name.replace("recovery", "recovry")
    for args in (
        ("campaigns", "show", typo),
        ("campaigns", "strategy", typo, "--strategy", str(EXAMPLES / "recovery.toml")),
    ):
        result = await csm(*args, database_url=database_url)
        assert result.returncode == 1
        assert result.stderr == (
            f"csm: error: unknown campaign '{typo}' (did you mean '{name}'?)\n"
        ), result.stderr


async def test_unreachable_database_is_one_clear_line() -> None:
    result = await csm(
        "campaigns", "list", database_url="postgresql://nobody:secret@127.0.0.1:1/none"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("csm: error: cannot reach the database at ")
    assert "secret" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
