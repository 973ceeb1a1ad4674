"""`csm start | amend | pause | resume | stop | status` and the starter scripts, as users run them.

Commands run as subprocesses against the session's dev server and database; an
in-process worker serves a task queue of the test's own (CSM_TASK_QUEUE).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle

from csm.cli.amendment_input import build_amendment, load_amendment_file
from csm.control import until_instant
from csm.errors import CsmError
from csm.settings import Settings
from csm.subcampaigns import register_sub_campaign
from tests.helpers import campaign_with_list, unique
from worker import build_worker
from workflows.subcampaign import PlanView, SubCampaignWorkflow

CSM = [sys.executable, "-m", "csm.cli"]
ROOT = Path(__file__).parent.parent
ZONE = "America/Chicago"

#: Pass 2 waits long enough to be amended; skipping it lets pass 3 follow at once.
AMENDABLE = f"""
timezone = "{ZONE}"
[response_groups.reached]
codes = ["delivered_person", "success"]

[[passes]]
name = "first call"
channel = "voice"

[[passes]]
name = "text later"
channel = "sms"
after = "60s"

[[passes]]
name = "email the rest"
channel = "email"
filter = "not ever('reached')"
after = "1s"
subject = "Reminder"
template = "Hello ${{first_name}}"
"""

QUICK = f"""
timezone = "{ZONE}"
[[passes]]
name = "call"
channel = "voice"
[[passes]]
name = "text"
channel = "sms"
after = "1s"
"""


class Runner:
    """Runs `csm` (or a starter script) with the test servers and the test's task queue."""

    def __init__(self, settings: Settings, task_queue: str, cwd: Path):
        self.cwd = cwd
        self.env = {
            **os.environ,
            "DATABASE_URL": settings.effective_database_url,
            "CSM_TEMPORAL_ADDRESS": settings.temporal_address,
            "CSM_TASK_QUEUE": task_queue,
            "CSM_SMTP_HOST": settings.smtp_host,
            "CSM_SMTP_PORT": str(settings.smtp_port),
            "CSM_TEMPORAL_UI_URL": "http://ui.example:8233",
            "COLUMNS": "200",
            "USER": "tester",
        }

    async def __call__(self, *args: str, script: str | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / script), *args] if script else [*CSM, *args]
        return await asyncio.to_thread(
            subprocess.run,
            command,
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def modules(self, *args: str) -> set[str]:
        """Every module `csm args` loads while it runs (`python -X importtime`'s report)."""
        command = [sys.executable, "-X", "importtime", "-m", "csm.cli", *args]
        result = await asyncio.to_thread(
            subprocess.run, command, env=self.env, cwd=self.cwd, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        lines = (line.split("|") for line in result.stderr.splitlines())
        return {parts[2].strip() for parts in lines if len(parts) == 3}


@pytest.fixture
async def csm(
    client: Client, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> AsyncIterator[Runner]:
    """A runner whose task queue an in-process worker serves for the test's duration."""
    task_queue = unique("cli")
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        yield Runner(settings, task_queue, tmp_path)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single `csm: error: ...` line of a failed command (no traceback)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("csm: error: "), lines[0]
    return lines[0].removeprefix("csm: error: ")


async def plan_when(
    handle: WorkflowHandle, ready: Callable[[PlanView], bool], seconds: float = 60
) -> PlanView:
    """Poll the workflow's plan until `ready` holds."""
    async with asyncio.timeout(seconds):
        while True:
            plan = await handle.query(SubCampaignWorkflow.plan_query)
            if ready(plan):
                return plan
            await asyncio.sleep(0.1)


async def started(csm: Runner, campaign: str, list_name: str, *extra: str) -> dict[str, Any]:
    result = await csm("start", "--campaign", campaign, "--list", list_name, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_start_status_amend_and_watch(
    csm: Runner, client: Client, engine: AsyncEngine
) -> None:
    campaign, list_name = await campaign_with_list(engine, AMENDABLE, contacts=60)
    launched = await started(csm, campaign, list_name)
    workflow_id = launched["workflow_id"]
    assert launched["sub_campaign"] == list_name and launched["already_running"] is False
    assert launched["temporal_ui"] == (
        f"http://ui.example:8233/namespaces/default/workflows/{workflow_id}"
    )
    table = await csm("start", "--campaign", campaign, "--list", list_name)
    assert table.returncode == 0, table.stderr  # again: finds the running workflow
    assert workflow_id in table.stdout and "Temporal UI: http://ui.example:8233/" in table.stdout
    assert f"sub-campaign '{list_name}' of campaign '{campaign}' is running already" in table.stdout

    handle = client.get_workflow_handle_for(SubCampaignWorkflow.run, workflow_id)
    plan = await plan_when(handle, lambda p: bool(p.passes) and p.passes[0].status.value == "done")

    status = await csm("status", list_name, "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["workflow_id"] == workflow_id and shown["sub_campaign"] == list_name
    assert shown["day"] == plan.day.isoformat()
    assert [p["name"] for p in shown["passes"]] == ["first call", "text later", "email the rest"]
    first = shown["passes"][0]
    assert first["status"] == "done" and first["channel"] == "voice"
    assert first["selected"] == 60 == first["attempted"] + first["skipped_contacts"]
    assert first["results"] == plan.passes[0].counts.results  # ledger agrees with the workflow
    assert shown["passes"][1]["status"] == "waiting"
    assert shown["passes"][1]["results"] == {} and shown["passes"][1]["selected"] == 0
    # Issue 13: a status reads with plain asyncpg and asks `plan` by name, so it loads
    # neither SQLAlchemy nor the workflow module (and the activities behind it).
    loaded = await csm.modules("status", list_name, "--json")
    assert {"asyncpg", "temporalio.client", "csm.results"} <= loaded
    assert not {m for m in loaded if m.startswith(("sqlalchemy", "sqlmodel", "workflows"))}

    refused = await csm("amend", list_name, "--skip-pass", "1")
    assert one_line_error(refused) == (
        f"cannot amend sub-campaign '{list_name}' (workflow {workflow_id}): operation 1 "
        "(skip 1): pass 1 'first call' is done; only passes that have not started can change"
    )

    until: list[str] = []
    local_now = datetime.now(UTC).astimezone(ZoneInfo(ZONE))
    if local_now.time() < time(23, 58):
        until = ["--until", "23:59"]
    amended = await csm(
        "amend", workflow_id, "--skip-pass", "text later", "--reason", "no texts today",
        *until, "--json",
    )  # fmt: skip
    assert amended.returncode == 0, amended.stderr
    new_plan = json.loads(amended.stdout)
    skipped = new_plan["passes"][1]
    assert (skipped["status"], skipped["amended"]) == ("skipped", True)
    record = new_plan["amendments"][-1]
    assert record["outcome"] == "applied" and record["author"] == "tester"
    assert record["reason"] == "no texts today" and record["operations"] == ["skip 'text later'"]
    if until:
        expected = datetime.combine(local_now.date(), time(23, 59), tzinfo=ZoneInfo(ZONE))
        assert datetime.fromisoformat(record["until"]) == expected

    # Watch until the workflow closes: one JSON object per refresh, the last one final.
    watched = await csm("status", workflow_id, "--watch", "--json")
    assert watched.returncode == 0, watched.stderr
    frames = [json.loads(line) for line in watched.stdout.splitlines()]
    assert frames[-1]["state"] == "completed"
    assert [p["status"] for p in frames[-1]["passes"]] == ["done", "skipped", "done"]
    result = await handle.result()
    assert result.state == "completed"
    assert one_line_error(await csm("amend", workflow_id, "--skip-pass", "3")) == (
        f"cannot amend sub-campaign '{list_name}' (workflow {workflow_id}): "
        "the sub-campaign is completed"
    )

    closed = await csm("status", workflow_id)
    assert closed.returncode == 0, closed.stderr
    for text in ("completed", "first call", "skipped (amended)", "results by code", "skip"):
        assert text in closed.stdout
    email = json.loads((await csm("status", workflow_id, "--json")).stdout)["passes"][2]
    assert email["selected"] == email["attempted"] + email["skipped_contacts"] > 0
    assert email["results"].get("success", 0) > 0


async def test_pause_resume_stop_and_refusals(
    csm: Runner, client: Client, engine: AsyncEngine
) -> None:
    campaign, list_name = await campaign_with_list(engine, AMENDABLE, contacts=20)
    workflow_id = (await started(csm, campaign, list_name))["workflow_id"]
    handle = client.get_workflow_handle_for(SubCampaignWorkflow.run, workflow_id)
    await plan_when(handle, lambda p: p.day is not None)
    who = f"sub-campaign '{list_name}' (workflow {workflow_id})"

    paused = await csm("pause", workflow_id)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == f"sub-campaign '{list_name}': paused\n"
    assert one_line_error(await csm("pause", workflow_id)) == (
        f"cannot pause {who}: the sub-campaign is paused, not running"
    )
    resumed = await csm("resume", list_name)
    assert (resumed.returncode, resumed.stdout) == (0, f"sub-campaign '{list_name}': running\n")
    stopped = await csm("stop", workflow_id)
    assert (stopped.returncode, stopped.stdout) == (0, f"sub-campaign '{list_name}': stopped\n")

    refusal = one_line_error(await csm("resume", workflow_id))
    assert refusal.startswith(f"cannot resume {who}: the sub-campaign is stopped")
    assert "stop is final" in refusal
    summary = await handle.result()
    assert summary.state == "stopped"
    # Closed now: Temporal itself refuses; the message says the same thing.
    assert one_line_error(await csm("resume", workflow_id)) == (
        f"cannot resume {who}: the sub-campaign is stopped (stop is final)"
    )
    shown = json.loads((await csm("status", workflow_id, "--json")).stdout)
    assert shown["state"] == "stopped"
    # Starting it again would quietly resume it: refused.
    assert one_line_error(await csm("start", "-c", campaign, "-l", list_name)) == (
        f"sub-campaign workflow {workflow_id} was stopped, and stop is final; "
        "to work the list again, start a new sub-campaign with --name"
    )


async def test_bad_input_is_one_clear_line(
    csm: Runner, engine: AsyncEngine, tmp_path: Path
) -> None:
    campaign, list_name = await campaign_with_list(engine, AMENDABLE, contacts=5)
    ref = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    files = {
        "bad": '{"operations": [{"op": "skip", "target": 2},]}',
        "no_target": json.dumps({"operations": [{"op": "skip"}]}),
        "wrong_op": json.dumps([{"op": "explode", "target": 1}]),
        "scalar": "42",
    }
    for name, text in files.items():
        (tmp_path / f"{name}.json").write_text(text)
    path = {name: tmp_path / f"{name}.json" for name in [*files, "missing"]}
    amend = ("amend", ref.name)
    commands = {
        "bad": (*amend, "--file", str(path["bad"])),
        "no_target": (*amend, "--file", str(path["no_target"])),
        "wrong_op": (*amend, "-f", str(path["wrong_op"])),
        "scalar": (*amend, "--file", str(path["scalar"])),
        "missing": (*amend, "--file", str(path["missing"])),
        "until_format": (*amend, "--skip-pass", "2", "--until", "25:00"),
        "until_past": (*amend, "--skip-pass", "2", "--until", "00:00"),
        "nothing": amend,
        "channel": (*amend, "--set-channel", "2", "fax"),
        "twice": (*amend, "--set-filter", "2", "attempts = 0", "--set-filter", "3", "x"),
        "not_found": (*amend, "--skip-pass", "2"),
        "status_not_found": ("status", ref.workflow_id),
        "unknown": ("pause", "no-such-sub-campaign"),
    }
    # Independent commands: run them side by side, then read each one's single error line.
    results = await asyncio.gather(*(csm(*args) for args in commands.values()))
    error = {name: one_line_error(result) for name, result in zip(commands, results, strict=True)}

    assert error["bad"] == f"{path['bad']}: not valid JSON: Expecting value at line 1 column 45"
    assert error["no_target"] == (
        f"{path['no_target']}: malformed amendment: operations.0.skip.target: Field required"
    )
    assert error["wrong_op"].startswith(f"{path['wrong_op']}: malformed amendment: operations.0: ")
    assert "explode" in error["wrong_op"]
    assert "expected a JSON object with 'operations'" in error["scalar"]
    assert error["missing"] == (
        f"cannot read amendment file '{path['missing']}': No such file or directory"
    )
    assert error["until_format"] == (
        f"--until '25:00': expected HH:MM (24-hour clock, {ZONE} time), e.g. 14:00"
    )
    assert error["until_past"].startswith("--until 00:00 is already past: it is ")
    assert f"in {ZONE}, the campaign's zone" in error["until_past"]
    assert error["nothing"] == (
        "nothing to amend: give --skip-pass, --set-filter, --set-channel or --file"
    )
    assert error["channel"] == (
        "--set-channel 2 fax: unknown channel 'fax' (voice, dialer, sms, email)"
    )
    assert error["twice"].startswith("--set-filter may be given once per command")
    # Registered but never started: Temporal has no such workflow.
    assert error["not_found"].startswith(
        f"sub-campaign '{ref.name}' (workflow {ref.workflow_id}) was not found on Temporal at "
    )
    assert error["status_not_found"] == error["not_found"]
    assert error["unknown"] == "unknown sub-campaign 'no-such-sub-campaign'"


async def test_starter_scripts_start_and_amend(
    csm: Runner, client: Client, engine: AsyncEngine
) -> None:
    campaign, list_name = await campaign_with_list(engine, AMENDABLE, contacts=10)
    result = await csm(
        "--campaign", campaign, "--list", list_name, script="starter/start_subcampaign.py"
    )
    assert result.returncode == 0, result.stderr
    workflow_id = result.stdout.split()[1]
    assert result.stdout.startswith(f"workflow {workflow_id} (sub-campaign '{list_name}')")
    handle = client.get_workflow_handle_for(SubCampaignWorkflow.run, workflow_id)
    await plan_when(handle, lambda p: bool(p.passes) and p.passes[0].status.value == "done")

    refused = await csm(workflow_id, "--skip-pass", "1", script="starter/amend.py")
    assert one_line_error(refused).startswith(f"amendment refused by {workflow_id}: ")
    amended = await csm(
        workflow_id, "--set-filter", "email the rest", "has_email",
        "--skip-pass", "text later", "--reason", "starter", script="starter/amend.py",
    )  # fmt: skip
    assert amended.returncode == 0, amended.stderr
    assert "pass 2 'text later': skipped (amended)" in amended.stdout
    assert "filter: has_email" in amended.stdout

    assert (await handle.result()).state == "completed"

    quick_campaign, quick_list = await campaign_with_list(engine, QUICK, contacts=10)
    again = await csm(
        "--campaign", quick_campaign, "--list", quick_list, "--name", "second", "--wait",
        script="starter/start_subcampaign.py",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "completed after 1 day(s)" in again.stdout


def test_until_is_today_on_the_campaign_clock_as_utc() -> None:
    noon_chicago = datetime(2026, 3, 8, 18, 0, tzinfo=UTC)  # DST began at 02:00 that day
    assert until_instant("14:30", ZONE, noon_chicago) == datetime(2026, 3, 8, 19, 30, tzinfo=UTC)
    assert until_instant("9:05", "Asia/Tokyo", noon_chicago) == datetime(
        2026, 3, 9, 0, 5, tzinfo=UTC
    )  # 03:00 on the 9th in Tokyo: 09:05 is later that day
    with pytest.raises(CsmError, match=r"--until 11:59 is already past: it is 13:00 in "):
        until_instant("11:59", ZONE, noon_chicago)
    with pytest.raises(CsmError, match="expected HH:MM"):
        until_instant("2pm", ZONE, noon_chicago)


def test_amendment_from_a_file_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "bob")
    now = datetime(2026, 3, 8, 18, 0, tzinfo=UTC)
    file = tmp_path / "amendment.json"
    file.write_text(
        json.dumps(
            {
                "operations": [{"op": "move", "target": 4, "after": 1}],
                "until": "16:30",
                "reason": "afternoon push",
            }
        )
    )
    amendment = build_amendment(
        skip=["3", "text later"],
        set_filter=("email", "has_email"),
        set_channel=None,
        file=file,
        until=None,
        reason=None,
        author=None,
        timezone=ZONE,
        now=now,
    )
    assert [op.op for op in amendment.operations] == ["move", "set_filter", "skip", "skip"]
    assert amendment.until == datetime(2026, 3, 8, 21, 30, tzinfo=UTC)
    assert amendment.reason == "afternoon push"
    assert amendment.author == "bob"  # the file names none: $USER

    with_flags = build_amendment(
        skip=[], set_filter=None, set_channel=("2", "sms"), file=file, until="17:00",
        reason="changed", author="alice", timezone=ZONE, now=now,
    )  # fmt: skip
    assert with_flags.until == datetime(2026, 3, 8, 22, 0, tzinfo=UTC)
    assert (with_flags.reason, with_flags.author) == ("changed", "alice")
    assert with_flags.operations[-1].channel.value == "sms"

    late = tmp_path / "late.json"
    late.write_text(json.dumps({"operations": [{"op": "skip", "target": 1}], "until": "08:00"}))
    with pytest.raises(CsmError, match=rf"^{late}: until 08:00 is already past"):
        load_amendment_file(late, ZONE, now)


def test_a_database_connection_lost_during_a_status_is_one_line(database_url: str) -> None:
    """`csm status` reads on one plain connection (no pool to reconnect): the server dropping
    it mid-command (a restart during `--watch`) ends the command in one line, no traceback."""
    import asyncpg

    from csm.cli.database import with_connection
    from csm.settings import asyncpg_dsn

    async def dropped(connection: asyncpg.Connection) -> int:
        pid = connection.get_server_pid()
        other = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await other.execute("SELECT pg_terminate_backend($1)", pid)
            for _ in range(100):  # the backend exits after the call returns: wait until gone
                gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
                if await other.fetchval(gone, pid):
                    break
                await asyncio.sleep(0.05)
        finally:
            await other.close()
        return await connection.fetchval("SELECT 1")

    with pytest.raises(CsmError, match=r"^lost the connection to the database at postgresql"):
        with_connection(dropped, database_url)
