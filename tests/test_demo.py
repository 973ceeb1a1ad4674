"""`csm demo` end to end on a private embedded stack, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from csm.cli.demo import amendment_due
from csm.plan import PassCounts
from csm.results import PassResult, SubCampaignStatus

CSM = [sys.executable, "-m", "csm.cli"]


def test_demo_runs_end_to_end(stack_env: dict[str, str], tmp_path: Path) -> None:
    stack_env.update(CSM_TASK_QUEUE="csm-demo-test", COLUMNS="160")
    result = subprocess.run(
        [*CSM, "demo", "--contacts", "200", "--seed", "5"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    # The whole of stderr on failure (a tuple's repr is cut short): the traceback says where.
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout (end)\n{result.stdout[-2000:]}\n"
        f"--- stderr\n{result.stderr}"
    )
    out = result.stdout
    assert "per-pass results · completed" in out
    for name in ("morning voice", "retry no answers", "text not reached", "email the rest"):
        assert name in out
    assert "results by code" in out and "success" in out
    assert "amended pass 3 by update" in out
    assert "(amended)" in out
    ui = stack_env["CSM_TEMPORAL_UI_URL"]
    assert f"Temporal UI: {ui}/namespaces/default/workflows/subcampaign-demo-" in out
    assert "finished in " in out

    mail_dir = Path(stack_env["CSM_STATE_DIR"]) / "mail"
    landed = sorted(mail_dir.glob("*.eml"))
    assert landed, out
    assert f"e-mails: {len(landed)} landed in {mail_dir.resolve()}" in out
    assert "@example.com" in landed[0].read_text()

    # The retry pass reaches some of the people the morning pass missed (the simulator
    # draws each pass afresh), read from the ledger rather than from the table's layout.
    workflow_id = re.search(r"sub-campaign started: workflow (\S+)", out)
    assert workflow_id, out
    summary = subprocess.run(
        [*CSM, "results", workflow_id[1], "--summary", "--format", "json"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert summary.returncode == 0, summary.stderr
    retry = [row for row in json.loads(summary.stdout) if row["pass_number"] == 2]
    assert retry, summary.stdout
    assert any(row["result"] == "delivered_person" and row["contacts"] > 0 for row in retry)


def _status(*passes: tuple[str, str]) -> SubCampaignStatus:
    return SubCampaignStatus(
        sub_campaign="s",
        campaign="c",
        workflow_id="w",
        day=None,
        state="running",
        strategy_version=1,
        passes=[
            PassResult(n, f"p{n}", channel, status, False, False, "", PassCounts())
            for n, (channel, status) in enumerate(passes, 1)
        ],
    )


def test_the_demo_amends_the_sms_pass_only_once_the_day_is_under_way() -> None:
    assert amendment_due(_status(("voice", "waiting"), ("sms", "pending"))) is None
    assert amendment_due(_status(("voice", "running"), ("sms", "pending"))) == 2
    assert amendment_due(_status(("voice", "done"), ("voice", "done"), ("sms", "waiting"))) == 3
    assert amendment_due(_status(("voice", "done"), ("sms", "running"))) is None
    assert amendment_due(_status(("voice", "running"), ("email", "pending"))) is None
