"""One derivation of a sub-campaign's state, shared by the CLI and the web page."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus as Status

from csm.settings import SEARCH_ATTRIBUTES
from csm.states import STATE_ATTRIBUTE, state_key, sub_campaign_state


@pytest.mark.parametrize(
    ("status", "recorded", "shown"),
    [
        (Status.RUNNING, None, "running"),  # before the workflow's first upsert
        (Status.RUNNING, "paused", "paused"),
        (Status.COMPLETED, "stopped", "stopped"),  # a stop closes the run as COMPLETED
        (Status.COMPLETED, "completed", "completed"),
        (Status.COMPLETED, None, "completed"),
        (Status.TERMINATED, "running", "terminated"),  # ended from outside, mid-run
        (Status.TIMED_OUT, "paused", "timed out"),
        (Status.FAILED, "stopped", "stopped"),  # it had stopped: that is how it ended
        (None, None, "unknown"),  # no run on Temporal
    ],
)
def test_the_state_a_front_end_shows(status: Status | None, recorded: str | None, shown: str):
    assert sub_campaign_state(status, recorded) == shown


def test_the_search_attribute_is_named_once() -> None:
    assert state_key().name == STATE_ATTRIBUTE in SEARCH_ATTRIBUTES
