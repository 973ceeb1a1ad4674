"""Hostile arguments to `python -m csm.cli`, in real processes on the test database.

Unknown commands and options, numbers out of range, directories, devices and
missing files where files go, 10,000-character names, names with newlines,
shell metacharacters and `../`, impossible dates, and names that look like SQL
injection. Each must end with exit code 1 (`csm: error: ...`, one line) or 2
(typer's usage error), never a Python traceback, and leave the database as it
was: every table still there, every row count the same.

The processes run a few at a time, in two rounds: first the commands that
only read, then those that would write if they accepted their input, so that
a command wrongly accepted in the second round cannot change what a first-round
command prints. Each round's row counts are compared before and after, and
each write case also checks that nothing by its name was created.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign
from csm.lists import import_list
from csm.settings import Settings
from csm.strategy import load_strategy
from tests.faults.snapshot import WATCHED, count_where, delete_like, row_counts

INJECTION = "x'; DROP TABLE contacts; --"
SHELL = "$(rm -rf ~); `id` | cat && echo $HOME > /tmp/owned"
LONG = "n" * 10_000
HUGE = "9" * 25  # far beyond a 64-bit integer
RUN = uuid.uuid4().hex[:8]  # this module's names
CAMPAIGN = f"hostile-{RUN}"
GOOD_STRATEGY = 'timezone = "UTC"\n[[passes]]\nname = "texts"\nchannel = "sms"\n'
#: Address space for a process that must not be able to take the machine's memory.
MEMORY_CAP = 1 << 30
CAPPED = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP})); "
    "sys.argv[0] = 'csm'; runpy.run_module('csm.cli', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class Hostile:
    id: str
    args: tuple[str, ...]  # "{dir}" is a scratch directory, "{good_csv}" a valid list file...
    says: str = ""  # a fragment of the error line (exit 1) or of the usage error (exit 2)
    #: Would write if it accepted its input: (table, column, name) that must not appear.
    creates: tuple[str, str, str] | None = None
    capped: bool = False  # run with MEMORY_CAP


READS = [
    Hostile("unknown_command", ("frobnicate",), "No such command"),
    Hostile("unknown_option", ("campaigns", "list", "--frobnicate"), "No such option"),
    Hostile("negative_limit", ("suppress", "list", "--limit", "-1"), "'--limit'"),
    Hostile("huge_limit", ("suppress", "list", "--limit", HUGE), "--limit"),
    Hostile("impossible_day", ("results", f"{CAMPAIGN}-sub", "--day", "2026-13-45"), "2026-13-45"),
    Hostile("sql_campaign_name", ("campaigns", "show", INJECTION), "unknown campaign"),
    Hostile("sql_list_name", ("lists", "show", INJECTION), "no list named"),
    Hostile("sql_sub_campaign_status", ("status", INJECTION), "unknown sub-campaign"),
    Hostile("sql_sub_campaign_results", ("results", INJECTION), "unknown sub-campaign"),
    Hostile("shell_metacharacters", ("campaigns", "show", SHELL), "unknown campaign"),
    Hostile("dot_dot_list_name", ("lists", "show", "../../../etc/passwd"), "no list named"),
    Hostile("long_sub_campaign_name", ("status", LONG), "unknown sub-campaign"),
    Hostile("strategy_is_a_directory", ("strategy", "validate", "{dir}"), "{dir}"),
    Hostile(
        # Reading it never ends: a clear refusal, not a process that eats the machine.
        "strategy_is_a_device",
        ("strategy", "validate", "/dev/zero"),
        "/dev/zero",
        capped=True,
    ),
]

WRITES = [
    Hostile(
        "list_file_is_a_directory",
        ("lists", "import", "{dir}", "--list", f"{RUN}-dir"),
        "not a file",
        creates=("lists", "name", f"{RUN}-dir"),
    ),
    Hostile(
        "list_file_does_not_exist",
        ("lists", "import", "{dir}/missing.csv", "--list", f"{RUN}-missing"),
        "no such file",
        creates=("lists", "name", f"{RUN}-missing"),
    ),
    Hostile(
        "list_file_dot_dot_path",
        ("lists", "import", "../../../../../../../../etc/passwd", "--list", f"{RUN}-passwd"),
        "no account key column",
        creates=("lists", "name", f"{RUN}-passwd"),
    ),
    Hostile(
        "long_list_name",
        ("lists", "import", "{good_csv}", "--list", LONG),
        "1 to 200 characters",
        creates=("lists", "name", LONG),
    ),
    Hostile(
        "newline_in_list_name",
        ("lists", "import", "{good_csv}", "--list", f"{RUN}\nsecond line"),
        "list name",
        creates=("lists", "name", f"{RUN}\nsecond line"),
    ),
    Hostile(
        "long_campaign_name",
        ("campaigns", "create", LONG, "--strategy", "{good_toml}"),
        "at most 200 characters",
        creates=("campaigns", "name", LONG),
    ),
    Hostile(
        "newline_in_campaign_name",
        ("campaigns", "create", f"{RUN}\nsecond line", "--strategy", "{good_toml}"),
        "campaign name",
        creates=("campaigns", "name", f"{RUN}\nsecond line"),
    ),
    Hostile(
        "nul_in_pass_name",
        ("campaigns", "create", f"{RUN}-nul", "--strategy", "{nul_toml}"),
        "pass 1",
        creates=("campaigns", "name", f"{RUN}-nul"),
    ),
    Hostile(
        "huge_priority",
        ("campaigns", "create", f"{RUN}-priority", "--strategy", "{good_toml}", "--priority", HUGE),
        "priority",
        creates=("campaigns", "name", f"{RUN}-priority"),
    ),
    Hostile(
        "huge_negative_priority",
        ("campaigns", "priority", CAMPAIGN, "--", f"-{HUGE}"),
        "priority",
    ),
    Hostile(
        "negative_agent_count",
        ("agents", "set", "--group", f"{RUN}-a", "--count", "-5"),
        "--count",
        creates=("agent_groups", "name", f"{RUN}-a"),
    ),
    Hostile(
        "huge_agent_count",
        ("agents", "set", "--group", f"{RUN}-b", "--count", HUGE),
        "--count",
        creates=("agent_groups", "name", f"{RUN}-b"),
    ),
    Hostile(
        "huge_talk_time",
        ("agents", "set", "--group", f"{RUN}-c", "--count", "2", "--talk", "99999999999d"),
        "--talk",
        creates=("agent_groups", "name", f"{RUN}-c"),
    ),
    Hostile("huge_suppression_id", ("suppress", "remove", HUGE), "suppression"),
    Hostile(
        "sql_names_to_start",
        ("start", "--campaign", INJECTION, "--list", INJECTION, "--name", INJECTION),
        "unknown campaign",
        creates=("sub_campaigns", "name", INJECTION),
    ),
    Hostile("sql_sub_campaign_pause", ("pause", INJECTION), "unknown sub-campaign"),
]
CASES = {case.id: case for case in READS + WRITES}


@dataclass(frozen=True)
class Outcome:
    says: str
    result: subprocess.CompletedProcess[str]


@dataclass
class Rounds:
    outcomes: dict[str, Outcome]
    counts: list[dict[str, int]]  # before the reads, between the rounds, after the writes


@pytest.fixture(scope="module")
async def rounds(
    engine: AsyncEngine,
    database_url: str,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Rounds]:
    directory = tmp_path_factory.mktemp("hostile")
    good_csv = directory / "good.csv"
    good_csv.write_text(f"account,wireless\n{RUN}-1,4155550100\n")
    good_toml = directory / "good.toml"
    good_toml.write_text(GOOD_STRATEGY)
    nul_toml = directory / "nul.toml"
    nul_toml.write_text(GOOD_STRATEGY.replace('"texts"', '"texts\\u0000evening"'))
    places = {
        "{dir}": str(directory),
        "{good_csv}": str(good_csv),
        "{good_toml}": str(good_toml),
        "{nul_toml}": str(nul_toml),
    }
    # Something to find and to change: a campaign and a list of this module's own.
    await create_campaign(engine, CAMPAIGN, load_strategy(GOOD_STRATEGY), GOOD_STRATEGY)
    await import_list(engine, good_csv, CAMPAIGN)

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CSM_TEMPORAL_ADDRESS": settings.temporal_address,
        "CSM_TASK_QUEUE": f"hostile-{RUN}",
        "COLUMNS": "200",
    }
    limit = asyncio.Semaphore(max(2, os.cpu_count() or 2))

    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace(key, value)
        return text

    async def run(case: Hostile) -> Outcome:
        args = [fill(arg) for arg in case.args]
        if case.capped:
            command = [sys.executable, "-c", CAPPED, *args]
        else:
            command = [sys.executable, "-m", "csm.cli", *args]
        async with limit:
            result = await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, timeout=120, env=env
            )
        return Outcome(fill(case.says), result)

    counts = [await row_counts(engine)]
    outcomes: dict[str, Outcome] = {}
    for batch in (READS, WRITES):
        for case, outcome in zip(
            batch, await asyncio.gather(*(run(case) for case in batch)), strict=True
        ):
            outcomes[case.id] = outcome
        counts.append(await row_counts(engine))
    yield Rounds(outcomes, counts)
    for table in ("campaigns", "lists", "agent_groups"):  # ours, and what a bug let in
        await delete_like(engine, table, "name", f"%{RUN}%")
    await delete_like(engine, "contacts", "account_key", f"{RUN}-%")


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_refused_cleanly(rounds: Rounds, engine: AsyncEngine, case: Hostile) -> None:
    outcome = rounds.outcomes[case.id]
    result = outcome.result
    shown = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.returncode in (1, 2), shown
    assert result.stdout == "", shown
    if result.returncode == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1, shown
        assert lines[0].startswith("csm: error: "), shown
        assert outcome.says in lines[0], shown
    else:
        assert result.stderr.startswith("Usage: csm"), shown
        assert "Error" in result.stderr and outcome.says in result.stderr, shown
    if case.creates is not None:
        table, column, name = case.creates
        assert await count_where(engine, table, column, name) == 0


@pytest.mark.parametrize("round_", ["reads", "writes"])
async def test_the_database_is_unchanged(rounds: Rounds, round_: str) -> None:
    before, after = (rounds.counts[0], rounds.counts[1])
    if round_ == "writes":
        before, after = (rounds.counts[1], rounds.counts[2])
    assert all(count >= 0 for count in after.values()), f"a table is gone: {after}"
    changed = {t: (before[t], after[t]) for t in WATCHED if before[t] != after[t]}
    assert not changed, f"rows before → after: {changed}"


async def test_the_campaign_keeps_its_priority(rounds: Rounds, engine: AsyncEngine) -> None:
    """`huge_negative_priority` targets this module's campaign: refused, it changes nothing."""
    async with engine.connect() as connection:
        priority = await connection.scalar(
            text("SELECT priority FROM campaigns WHERE name = :name"), {"name": CAMPAIGN}
        )
    assert priority == 0
