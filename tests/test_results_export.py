"""`csm results`: the attempt ledger of a sub-campaign exported as CSV / JSON Lines, on real
PostgreSQL, with attempt rows written by SQL (no workflow needed to test an export)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import campaign_today, create_campaign
from csm.exports import (
    ROW_COLUMNS,
    SUMMARY_COLUMNS,
    ExportError,
    atomic_output,
    export_rows,
    export_summary,
    neutralise,
    parse_day,
)
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list

CSM = [sys.executable, "-m", "csm.cli"]
ZONE = "America/Chicago"

STRATEGY = f"""
timezone = "{ZONE}"
[response_groups.reached]
codes = ["delivered_person", "success"]
[response_groups.machine]
codes = ["delivered_machine"]
[response_groups.talked_or_left]
codes = ["delivered_person", "delivered_machine"]

[[passes]]
name = "morning voice"
channel = "voice"

[[passes]]
name = "text the rest"
channel = "sms"
"""

OVERRIDE = f"""
timezone = "{ZONE}"
[response_groups.got_through]
codes = ["busy"]

[[passes]]
name = "override call"
channel = "voice"
"""

GROUPS = {
    "delivered_person": ["reached", "talked_or_left"],
    "success": ["reached"],
    "delivered_machine": ["machine", "talked_or_left"],
}
NAMES = {1: "morning voice", 2: "text the rest"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Row:
    day: date
    pass_number: int
    contact: str  # account key
    device: str | None  # device value; None: a contact-level skip (device_id 0)
    try_shown: int  # as people count tries (1, 2, ...); the ledger stores it less one
    channel: str
    result: str
    skip_reason: str | None
    attempted_at: datetime


@dataclass(frozen=True)
class Ledger:
    workflow_id: str
    sub_name: str
    today: date
    rows: list[Row]
    keys: dict[str, str]  # role → account key
    phones: dict[str, str]  # role → first device value
    override_workflow_id: str


async def _first_device(engine: AsyncEngine, contact_id: int) -> tuple[int, str]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT id, value FROM devices WHERE contact_id = :c ORDER BY position LIMIT 1"
                ),
                {"c": contact_id},
            )
        ).one()
    return row.id, row.value


@pytest.fixture(scope="module")
async def ledger(engine: AsyncEngine) -> Ledger:
    campaign, list_name = unique("results"), unique("results-list")
    await create_campaign(engine, campaign, load_strategy(STRATEGY), STRATEGY)
    synthetic = await create_synthetic_list(engine, list_name, contacts=3, seed=7)
    evil_key = f'=HYPERLINK("http://evil.example/{uuid.uuid4().hex[:6]}","x")'
    async with engine.begin() as connection:
        ids = (
            await connection.execute(
                text(
                    "SELECT c.id FROM contacts c JOIN list_members m ON m.contact_id = c.id "
                    "WHERE m.list_id = :l ORDER BY c.id"
                ),
                {"l": synthetic.list_id},
            )
        ).scalars()
        contact_ids = dict(zip(("ann", "bob", "cat"), ids, strict=True))
        evil_id = await connection.scalar(
            text(
                "INSERT INTO contacts (account_key, timezone, timezone_source, consent_voice, "
                "consent_sms, consent_email) VALUES (:k, :z, 'file', true, true, true) "
                "RETURNING id"
            ),
            {"k": evil_key, "z": ZONE},
        )
        await connection.execute(
            text(
                "INSERT INTO devices (contact_id, position, kind, value) "
                "VALUES (:c, 1, 'email', '-@evil.example')"
            ),
            {"c": evil_id},
        )
        await connection.execute(
            text("INSERT INTO list_members (list_id, contact_id) VALUES (:l, :c)"),
            {"l": synthetic.list_id, "c": evil_id},
        )
        contact_ids["evil"] = evil_id
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    other = await register_sub_campaign(
        engine,
        campaign=campaign,
        list_name=list_name,
        name=unique("override"),
        strategy=load_strategy(OVERRIDE),
    )

    devices = {role: await _first_device(engine, cid) for role, cid in contact_ids.items()}
    keys = {}
    async with engine.connect() as connection:
        for role, cid in contact_ids.items():
            keys[role] = await connection.scalar(
                text("SELECT account_key FROM contacts WHERE id = :c"), {"c": cid}
            )

    today = campaign_today(ZONE)
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    base = datetime(2030, 1, 2, 15, 0, tzinfo=UTC)
    plan = [  # (day, pass, role, device?, try, channel, result, skip reason)
        (yesterday, 1, "ann", True, 1, "voice", "no_answer", None),  # before the strategy
        (today, 1, "ann", True, 1, "voice", "delivered_person", None),
        (today, 1, "bob", True, 1, "voice", "delivered_machine", None),
        (today, 1, "cat", True, 1, "voice", "no_answer", None),
        (today, 1, "cat", True, 2, "voice", "delivered_machine", None),
        (today, 1, "evil", True, 1, "email", "bounced", None),
        (today, 2, "ann", False, 1, "sms", "skipped", "final"),
        (today, 2, "bob", True, 1, "sms", "success", None),
        (today, 2, "evil", False, 1, "sms", "skipped", "no_consent"),
        (today, 3, "cat", True, 1, "sms", "success", None),  # a pass an amendment added
        (tomorrow, 1, "ann", True, 1, "voice", "busy", None),
        (tomorrow, 1, "bob", False, 1, "voice", "skipped", "outside_window"),
        (tomorrow, 1, "cat", False, 1, "voice", "skipped", "outside_window"),
    ]
    rows: list[Row] = []
    async with engine.begin() as connection:
        for n, (day, number, role, with_device, attempt, channel, result, reason) in enumerate(
            plan
        ):
            at = base + timedelta(minutes=n)
            device_id, value = devices[role] if with_device else (0, None)
            await connection.execute(
                text(
                    "INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, "
                    "contact_id, device_id, try_number, channel, result, skip_reason, "
                    "attempted_at) VALUES (:s, :c, :d, :p, :k, :v, :t, :ch, :r, :why, :at)"
                ),
                {
                    "s": sub.id,
                    "c": sub.campaign_id,
                    "d": day,
                    "p": number,
                    "k": contact_ids[role],
                    "v": device_id,
                    "t": attempt - 1,  # the ledger numbers tries (rounds) from 0
                    "ch": channel,
                    "r": result,
                    "why": reason,
                    # written in Chicago time: the export must say it in UTC
                    "at": at.astimezone(ZoneInfo(ZONE)),
                },
            )
            rows.append(Row(day, number, keys[role], value, attempt, channel, result, reason, at))
        # one row in the sub-campaign with its own strategy, and none elsewhere must leak in
        await connection.execute(
            text(
                "INSERT INTO attempts (sub_campaign_id, campaign_id, day, pass_number, "
                "contact_id, device_id, try_number, channel, result) "
                "VALUES (:s, :c, :d, 1, :k, :v, 1, 'voice', 'busy')"
            ),
            {
                "s": other.id,
                "c": other.campaign_id,
                "d": today,
                "k": contact_ids["ann"],
                "v": devices["ann"][0],
            },
        )
    return Ledger(
        workflow_id=sub.workflow_id,
        sub_name=sub.name,
        today=today,
        rows=rows,
        keys=keys,
        phones={role: value for role, (_, value) in devices.items()},
        override_workflow_id=other.workflow_id,
    )


async def export_csv(engine: AsyncEngine, reference: str, **options) -> list[dict[str, str]]:
    out = io.StringIO()
    await export_rows(engine, reference, out, fmt="csv", **options)
    out.seek(0)
    reader = csv.reader(out)
    header = next(reader)
    assert tuple(header) == ROW_COLUMNS
    return [dict(zip(header, cells, strict=True)) for cells in reader]


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


# ---- unit pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+2", "'=1+2"),
        ("+14155550123", "'+14155550123"),
        ("-3", "'-3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ACC-1", "ACC-1"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_prefixes_only_formula_starts(cell: str, shown: str) -> None:
    assert neutralise(cell) == shown


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "2026-1-5", "20260105", ""])
def test_parse_day_refuses_what_is_not_a_date(bad: str) -> None:
    with pytest.raises(ExportError, match="YYYY-MM-DD"):
        parse_day(bad)
    assert parse_day("2026-01-05") == date(2026, 1, 5)


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write("half a row")
        raise RuntimeError("boom")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]

    with atomic_output(target) as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# ---- the rows -----------------------------------------------------------------------------


async def test_csv_has_every_ledger_row_with_names_groups_and_neutralised_cells(
    engine: AsyncEngine, ledger: Ledger
) -> None:
    exported = await export_csv(engine, ledger.workflow_id)
    assert len(exported) == len(ledger.rows)
    async with engine.connect() as connection:
        in_sql = await connection.scalar(
            text(
                "SELECT count(*) FROM attempts a JOIN sub_campaigns s ON s.id = a.sub_campaign_id "
                "WHERE s.workflow_id = :w"
            ),
            {"w": ledger.workflow_id},
        )
    assert len(exported) == in_sql

    def key(row: dict[str, str] | Row) -> tuple:
        if isinstance(row, Row):
            return (row.day.isoformat(), str(row.pass_number), neutralise(row.contact),
                    str(row.try_shown), row.result)  # fmt: skip
        return (row["day"], row["pass_number"], row["account_key"], row["try"], row["result"])

    by_key = {key(row): row for row in exported}
    assert set(by_key) == {key(row) for row in ledger.rows}
    for expected in ledger.rows:
        got = by_key[key(expected)]
        assert got["attempted_at"] == expected.attempted_at.isoformat()
        assert got["attempted_at"].endswith("+00:00")
        assert got["channel"] == expected.channel
        assert got["skip_reason"] == (expected.skip_reason or "")
        known = expected.day >= ledger.today and expected.pass_number in NAMES
        assert got["pass_name"] == (NAMES[expected.pass_number] if known else "")
        groups = GROUPS.get(expected.result, []) if expected.day >= ledger.today else []
        assert got["response_groups"] == ";".join(groups)
        if expected.device is None:  # a contact-level skip: no device
            assert got["device"] == "" and got["device_kind"] == ""
        else:
            assert got["device"] == neutralise(expected.device)
            assert got["device_kind"] in ("wireless", "email")

    # ledger order: day, pass, contact, device, try
    days_and_passes = [(r["day"], int(r["pass_number"])) for r in exported]
    assert days_and_passes == sorted(days_and_passes)

    evil = [r for r in exported if r["account_key"].startswith("'=HYPERLINK")]
    assert len(evil) == 2
    assert {r["account_key"] for r in evil} == {"'" + ledger.keys["evil"]}
    assert {r["device"] for r in evil} == {"'-@evil.example", ""}
    phone = ledger.phones["ann"]
    assert phone.startswith("+1")
    assert any(r["device"] == "'" + phone for r in exported)
    assert not any(r["device"].startswith("+") for r in exported)


async def test_json_lines_carry_plain_values(engine: AsyncEngine, ledger: Ledger) -> None:
    out = io.StringIO()
    stats = await export_rows(engine, ledger.sub_name, out, fmt="json")
    lines = out.getvalue().splitlines()
    assert stats.rows == len(lines) == len(ledger.rows)
    objects = [json.loads(line) for line in lines]
    assert all(tuple(o) == ROW_COLUMNS for o in objects)
    assert stats.unknown_days == [ledger.today - timedelta(days=1)]

    evil = [o for o in objects if o["account_key"] == ledger.keys["evil"]]  # not neutralised
    assert len(evil) == 2
    skipped = [o for o in evil if o["result"] == "skipped"]
    assert skipped == [
        {
            **skipped[0],
            "device": None,
            "device_kind": None,
            "skip_reason": "no_consent",
            "pass_name": "text the rest",
            "response_groups": [],
        }
    ]
    person = next(o for o in objects if o["result"] == "delivered_person")
    assert person["response_groups"] == ["reached", "talked_or_left"]
    assert person["device"] == ledger.phones["ann"]
    assert isinstance(person["pass_number"], int) and isinstance(person["try"], int)
    # Tries count from 1, as docs/cli.md says, though the ledger stores its rounds from 0.
    cat = ledger.keys["cat"]
    today = ledger.today.isoformat()
    tries = [o["try"] for o in objects if (o["account_key"], o["day"]) == (cat, today)]
    assert sorted(tries) == [1, 1, 2]
    added = next(o for o in objects if o["pass_number"] == 3)
    assert added["pass_name"] is None and added["response_groups"] == ["reached"]


async def test_day_filter_keeps_one_campaign_day(engine: AsyncEngine, ledger: Ledger) -> None:
    tomorrow = ledger.today + timedelta(days=1)
    exported = await export_csv(engine, ledger.workflow_id, day=tomorrow)
    assert {r["day"] for r in exported} == {tomorrow.isoformat()}
    assert len(exported) == sum(1 for r in ledger.rows if r.day == tomorrow) == 3
    assert [r["result"] for r in exported].count("skipped") == 2

    assert await export_csv(engine, ledger.workflow_id, day=date(2001, 1, 1)) == []


async def test_override_strategy_names_the_passes(engine: AsyncEngine, ledger: Ledger) -> None:
    exported = await export_csv(engine, ledger.override_workflow_id)
    assert len(exported) == 1
    assert exported[0]["pass_name"] == "override call"
    assert exported[0]["response_groups"] == "got_through"


async def test_progress_is_reported_every_n_rows(engine: AsyncEngine, ledger: Ledger) -> None:
    seen: list[int] = []
    stats = await export_rows(
        engine, ledger.workflow_id, io.StringIO(), progress=seen.append, progress_every=4
    )
    assert stats.rows == 13
    assert seen == [4, 8, 12]


# ---- the summary --------------------------------------------------------------------------


async def test_summary_counts_match_the_ledger(engine: AsyncEngine, ledger: Ledger) -> None:
    out = io.StringIO()
    await export_summary(engine, ledger.workflow_id, out, fmt="json")
    summary = json.loads(out.getvalue())
    assert all(tuple(row) == SUMMARY_COLUMNS for row in summary)

    # expected from the rows the fixture wrote
    rows_by: Counter[tuple] = Counter()
    contacts_by: dict[tuple, set[str]] = {}
    for r in ledger.rows:
        k = (r.day.isoformat(), r.pass_number, r.result, r.skip_reason)
        rows_by[k] += 1
        contacts_by.setdefault(k, set()).add(r.contact)
    expected = []
    for k in sorted(rows_by, key=lambda k: (k[0], k[1], k[2], k[3] or "")):
        known = k[0] >= ledger.today.isoformat()
        for group in (GROUPS.get(k[2]) if known else None) or [None]:
            expected.append((*k, group, rows_by[k], len(contacts_by[k])))
    got = [
        (
            s["day"],
            s["pass_number"],
            s["result"],
            s["skip_reason"],
            s["response_group"],
            s["rows"],
            s["contacts"],
        )
        for s in summary
    ]
    assert sorted(got, key=repr) == sorted(expected, key=repr)

    skip_rows = [s for s in summary if s["result"] == "skipped"]
    assert {(s["day"], s["skip_reason"], s["contacts"]) for s in skip_rows} == {
        (ledger.today.isoformat(), "final", 1),
        (ledger.today.isoformat(), "no_consent", 1),
        ((ledger.today + timedelta(days=1)).isoformat(), "outside_window", 2),
    }

    # a group's rows summed over the summary equal the ledger's count of its codes, in SQL
    async with engine.connect() as connection:
        machine = await connection.scalar(
            text(
                "SELECT count(*) FROM attempts a JOIN sub_campaigns s ON s.id = a.sub_campaign_id "
                "WHERE s.workflow_id = :w AND a.day >= :d "
                "AND a.result = ANY(CAST(:codes AS text[]))"
            ),
            {"w": ledger.workflow_id, "d": ledger.today, "codes": ["delivered_machine"]},
        )
    assert machine == 2
    assert sum(s["rows"] for s in summary if s["response_group"] == "machine") == machine
    voice_today = [
        s for s in summary if s["day"] == ledger.today.isoformat() and s["pass_number"] == 1
    ]
    assert {s["pass_name"] for s in voice_today} == {"morning voice"}


async def test_summary_csv_for_one_day(engine: AsyncEngine, ledger: Ledger) -> None:
    out = io.StringIO()
    await export_summary(engine, ledger.workflow_id, out, day=ledger.today, fmt="csv")
    out.seek(0)
    rows = list(csv.DictReader(out))
    assert {r["day"] for r in rows} == {ledger.today.isoformat()}
    assert sum(int(r["rows"]) for r in rows if r["response_group"] == "reached") == 3
    added = [r for r in rows if r["pass_number"] == "3"]
    assert added == [{**added[0], "pass_name": "", "result": "success", "rows": "1"}]


# ---- the command --------------------------------------------------------------------------


async def test_cli_writes_a_file_atomically_and_reports(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    target = tmp_path / "march.csv"
    done = await csm(
        "results", ledger.workflow_id, "--output", str(target), database_url=database_url
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"wrote {len(ledger.rows)} rows of sub-campaign {ledger.sub_name!r}" in done.stderr
    assert "no strategy in force on" in done.stderr  # yesterday's rows predate the campaign
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(ledger.rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["march.csv"]

    as_json = await csm(
        "results",
        ledger.workflow_id,
        "--format",
        "json",
        "--day",
        ledger.today.isoformat(),
        database_url=database_url,
    )
    assert as_json.returncode == 0, as_json.stderr
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(lines) == sum(1 for r in ledger.rows if r.day == ledger.today)

    summary = await csm(
        "results", ledger.workflow_id, "--summary", "-f", "json", database_url=database_url
    )
    assert summary.returncode == 0, summary.stderr
    assert {row["result"] for row in json.loads(summary.stdout)} >= {"skipped", "success"}


async def test_cli_errors_are_one_line_and_leave_no_file(
    database_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("keep me\n")
    missing = unique("no-such-sub")
    unknown = await csm("results", missing, "--output", str(target), database_url=database_url)
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines() == [f"csm: error: unknown sub-campaign {missing!r}"]
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]

    bad_day = await csm(
        "results", ledger.workflow_id, "--day", "13/01/2026", database_url=database_url
    )
    assert bad_day.returncode == 1
    assert bad_day.stderr.splitlines() == [
        "csm: error: bad --day '13/01/2026': write the campaign day as YYYY-MM-DD"
    ]

    bad_format = await csm("results", ledger.workflow_id, "-f", "xlsx", database_url=database_url)
    assert bad_format.returncode == 1
    assert bad_format.stderr.splitlines() == [
        "csm: error: unknown format 'xlsx': use one of csv, json"
    ]
    assert bad_format.stdout == ""
