"""What `csm status`, `csm demo` and `csm strategy validate` print, at 80 columns and wider.

Issue 13: at 80 columns (a log file, CI, a narrow terminal) pass names broke a word
per line and column titles were cut to `cha…`; skip counts did not say what they
count; passes without agents showed an abandon rate.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console, RenderableType

from csm.cli.status_view import render_status, results_table, status_table
from csm.cli.strategy import passes_table
from csm.plan import PassCounts
from csm.results import PassResult, SubCampaignStatus
from csm.strategy.loader import load_strategy_file

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))
NAMES = ("morning voice", "retry no answers", "text not reached", "agents call back the promises")


def printed(renderable: RenderableType, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def a_day() -> SubCampaignStatus:
    """The demo's day in numbers: a voice pass whose skip rows outnumber its skipped contacts."""
    voice = PassCounts(
        selected=2000,
        attempted=1405,
        skipped=595,
        results={"delivered_machine": 600, "no_answer": 500, "delivered_person": 305},
        skip_reasons={"no_consent": 595, "capped:reg_f_7_in_7": 746},
    )
    passes = [
        PassResult(1, NAMES[0], "voice", "done", False, False, "", voice),
        PassResult(
            2, NAMES[1], "voice", "done", False, False, "", PassCounts(selected=7, attempted=7)
        ),
        PassResult(3, NAMES[2], "sms", "running", True, False, "", PassCounts(selected=300)),
        PassResult(
            4,
            NAMES[3],
            "dialer",
            "done",
            False,
            True,
            "",
            PassCounts(selected=40, attempted=40, results={"agent_connected": 36, "abandoned": 4}),
            utilisation=0.5,
            agent_group="collections",
        ),
    ]
    return SubCampaignStatus("march", "reminders", "subcampaign-x", None, "running", 1, passes)


def names_whole(text: str, names: tuple[str, ...]) -> None:
    for name in names:
        assert any(name in line for line in text.splitlines()), (name, text)


@pytest.mark.parametrize("width", [80, 100, 160])
def test_status_and_demo_tables_cut_nothing(width: int) -> None:
    status = a_day()
    for shown in (
        printed(render_status(status), width),
        printed(status_table(status, title="per-pass results · completed"), width),
        printed(results_table(status), width),
    ):
        assert "…" not in shown, shown
        assert max(len(line) for line in shown.splitlines()) <= width
    whole = printed(render_status(status), width)
    names_whole(whole, NAMES)
    if width == 80:  # the vertical layout names each count
        for words in ("selected 2000", "attempted 1405", "skipped 595", "remaining 0"):
            assert words in whole, whole
    assert "skip: capped:reg_f_7_in_7" in whole


def test_a_wide_output_keeps_the_table() -> None:
    shown = printed(status_table(a_day()), 160)
    header = next(line for line in shown.splitlines() if "attempted" in line)
    assert header.split() == [
        "#", "pass", "channel", "status", "selected", "attempted", "skipped", "remaining", "rates",
    ]  # fmt: skip


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("width", [80, 200])
def test_strategy_validate_cuts_nothing(example: Path, width: int) -> None:
    definition, _ = load_strategy_file(example)
    shown = printed(passes_table(definition), width)
    assert "…" not in shown, shown
    names_whole(shown, tuple(p.name for p in definition.passes))
    for step in definition.passes:  # every filter is there, word for word
        assert set((step.filter or "(everyone)").split()) <= set(shown.split()), shown


def test_abandon_shows_only_for_passes_with_agents() -> None:
    live = PassCounts(selected=10, attempted=10, results={"agent_connected": 3, "abandoned": 1})
    without = PassResult(1, "avm", "voice", "done", False, False, "", live)
    recovery = PassResult(1, "avm", "voice", "done", False, False, "", live, agent_group="sales")
    assert without.abandon_rate is None and without.as_json()["rates"]["abandon"] is None
    assert recovery.abandon_rate == 0.25 and recovery.as_json()["rates"]["abandon"] == 0.25
    status = a_day()
    for width in (80, 160):
        shown = printed(status_table(status), width)
        assert shown.count("abandon") == 1 and "abandon 10.0%" in shown  # the dialer pass only


def test_skip_counts_say_what_they_count() -> None:
    voice = a_day().passes[0].as_json()
    assert "skipped" not in voice and "skip_reasons" not in voice
    assert voice["skipped_contacts"] == 595  # contacts not tried: adds up to selected
    assert voice["selected"] == voice["attempted"] + voice["skipped_contacts"] + voice["remaining"]
    assert voice["skips_by_reason"] == {"capped:reg_f_7_in_7": 746, "no_consent": 595}
    shown = printed(results_table(a_day()), 120)
    assert "skip: no_consent" in shown
    assert "once per device and try skipped" in " ".join(shown.split())
