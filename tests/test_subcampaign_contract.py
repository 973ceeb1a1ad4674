"""The sub-campaign workflow's contract as the core states it (csm.subcampaign_types), the
amendment log the workflow keeps (csm.amendment_log), and the rule that the control
reaches the workflow without importing it. Pure: no servers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from csm.amendment_log import HELD, AmendmentLog
from csm.amendments import Amendment, AmendmentRejected, SkipPass
from csm.subcampaign_types import LIFECYCLE_MOVES, lifecycle_refusal

NOON = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "state", "refusal"),
    [
        ("pause", "running", None),
        ("resume", "paused", None),
        ("stop", "paused", None),
        ("resume", "running", "the sub-campaign is running, not paused"),
        ("pause", "paused", "the sub-campaign is paused, not running"),
        ("resume", "stopped", "the sub-campaign is stopped; it cannot resume (stop is final)"),
        ("explode", "running", "unknown action 'explode': pause, resume or stop"),
    ],
)
def test_what_the_lifecycle_update_refuses(action: str, state: str, refusal: str | None) -> None:
    assert lifecycle_refusal(action, state) == refusal
    if refusal is None:
        assert state in LIFECYCLE_MOVES[action][0]


def test_the_log_numbers_entries_and_keeps_amendments_in_force_until_they_end() -> None:
    log = AmendmentLog()
    lasting = Amendment(operations=[SkipPass(target=2)], author="ann", reason="why")
    ending = Amendment(operations=[SkipPass(target=3)], until=NOON + timedelta(hours=1))
    log.applied(lasting, at=NOON)
    log.applied(ending, at=NOON)
    assert [e.number for e in log.entries] == [1, 2]
    assert log.entries[0].operations == ["skip 2"] and log.entries[0].author == "ann"
    assert log.deadlines() == [NOON + timedelta(hours=1)]
    assert not log.expire(NOON)
    assert log.expire(NOON + timedelta(hours=1))
    assert [e.outcome for e in log.entries] == ["applied", "expired"]
    assert [a for _, a in log.active] == [lasting]


def test_held_amendments_settle_in_order_once_the_plan_exists() -> None:
    log = AmendmentLog()
    first = log.hold(Amendment(operations=[SkipPass(target=1)]), at=NOON)
    second = log.hold(Amendment(operations=[SkipPass(target=9)]), at=NOON)
    assert (first.outcome, first.message) == ("pending", HELD)

    def apply(amendment: Amendment) -> None:
        if amendment.operations[0].target == 9:
            raise AmendmentRejected("unknown pass 9")

    log.settle_held(apply, lambda: None)
    assert (first.outcome, first.message) == ("applied", HELD)
    assert (second.outcome, second.message) == ("rejected", f"{HELD}, then: unknown pass 9")
    assert log.held == [] and [r for r, _ in log.active] == [first]


def test_the_control_starts_and_steers_without_the_workflow_module() -> None:
    script = (
        "import sys\n"
        "import csm.control\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('workflows', 'activities', 'worker')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_the_worker_module_loads_no_front_end() -> None:
    """import-linter reads packages only, so worker.py's own imports are checked here."""
    script = (
        "import sys\n"
        "import worker\n"
        "print(sorted(m for m in sys.modules if m.startswith("
        "('csm.cli', 'csm.web', 'csm.devstack', 'csm.testing'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
