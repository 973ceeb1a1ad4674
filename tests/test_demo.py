"""`csm demo` end to end on a private embedded stack, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from csm.cli.demo import amendment_due
from csm.plan import PassCounts
from csm.results import PassResult, SubCampaignStatus
from csm.testing.servers import free_port

CSM = [sys.executable, "-m", "csm.cli"]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private dev stack (state dir, free ports), torn down after the test."""
    temporal_port, ui_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "CSM_STATE_DIR": str(tmp_path / "state"),
        "CSM_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "CSM_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "CSM_EMBEDDED_POSTGRES_PORT": str(free_port()),
        "CSM_SMTP_HOST": "127.0.0.1",
        "CSM_SMTP_PORT": str(free_port()),
        "CSM_TASK_QUEUE": "csm-demo-test",
        "COLUMNS": "160",
    }
    yield env
    subprocess.run([*CSM, "dev", "down"], env=env, capture_output=True, timeout=120)


def test_demo_runs_end_to_end(stack_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [*CSM, "demo", "--contacts", "200", "--seed", "5"],
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
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
