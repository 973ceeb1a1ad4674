"""How `csm status`, `csm amend` and the demo show a sub-campaign: today's passes with live
counts, the results by code, and the amendment log (rich renderables, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from csm.cli.layout import DOT, WideOrNarrow, records

if TYPE_CHECKING:
    from csm.results import PassResult, SubCampaignStatus

STATUS_COLOURS = {
    "running": "yellow",
    "waiting": "cyan",
    "done": "green",
    "skipped": "dim",
    "stopped": "red",
    "paused": "magenta",
    "pending": "white",
    "completed": "green",
}


def _coloured(word: str) -> str:
    colour = STATUS_COLOURS.get(word)
    return f"[{colour}]{word}[/{colour}]" if colour else word


def status_table(status: SubCampaignStatus, title: str | None = None) -> WideOrNarrow:
    """Today's passes with live counts: shared by status, amend and the demo.

    A table where the output is wide enough for it, one block per pass where it is
    not (an 80-column terminal, a log file, CI).
    """
    return WideOrNarrow(_wide_status(status, title), lambda: _narrow_status(status, title))


def _wide_status(status: SubCampaignStatus, title: str | None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("#")
    table.add_column("pass", no_wrap=True)  # a name is read whole, or the narrow layout is used
    table.add_column("channel")
    table.add_column("status")
    for heading in ("selected", "attempted", "skipped", "remaining"):
        table.add_column(heading, justify="right", no_wrap=True)
    table.add_column("rates")
    for p in status.passes:
        state = _state(p) + _in_flight(p)
        if p.note:
            state += f"\n[dim]{escape(p.note)}[/dim]"
        table.add_row(
            str(p.number),
            escape(p.name),
            p.channel,
            state,
            str(p.counts.selected),
            str(p.counts.attempted),
            str(p.counts.skipped),
            str(p.remaining),
            "\n".join(_rates(p)),
        )
    return table


def _narrow_status(status: SubCampaignStatus, title: str | None) -> Table:
    entries = []
    for p in status.passes:
        lines = [
            f"[bold]{escape(p.name)}[/bold]{DOT}{p.channel}{DOT}{_state(p)}{_in_flight(p)}",
            f"selected {p.counts.selected}{DOT}attempted {p.counts.attempted}{DOT}"
            f"skipped {p.counts.skipped}{DOT}remaining {p.remaining}",
        ]
        if rates := _rates(p):
            lines.append(DOT.join(rates))
        if p.note:
            lines.append(f"[dim]{escape(p.note)}[/dim]")
        entries.append((str(p.number), lines))
    return records(title, entries, heading="pass")


def _state(p: PassResult) -> str:
    flags = " (added)" if p.added else (" (amended)" if p.amended else "")
    return _coloured(p.status) + flags


def _in_flight(p: PassResult) -> str:
    """Attempts a carrier has not answered yet: they count once their final status comes."""
    return f" ({p.in_flight} in flight)" if p.in_flight else ""


def _rates(p: PassResult) -> list[str]:
    """Contact rate, and for passes with agents the abandon rate and agent utilisation."""
    shown = []
    for label, value in (
        ("contact", p.contact_rate),
        ("abandon", p.abandon_rate),
        ("agents busy", p.utilisation),
    ):
        if value is not None:
            shown.append(f"{label} {value:.1%}")
    return shown


#: Under the table of results by code: what its skip rows count, beside the pass table's.
SKIP_ROWS_CAPTION = (
    "skip: rows count each contact once per device and try skipped; "
    "the passes' `skipped` counts contacts not tried at all"
)


def results_table(status: SubCampaignStatus, title: str | None = "results by code") -> WideOrNarrow:
    """Attempt rows by result code (rows) and pass (columns), then skip rows by reason.

    A matrix stays narrow however many codes occur, and reads down a pass's column;
    with more passes than the width holds, the columns are titled by number alone.
    """
    return WideOrNarrow(
        _results_matrix(status, title, "pass {}"),
        lambda: _results_matrix(status, title, "#{}"),
    )


def _results_matrix(status: SubCampaignStatus, title: str | None, heading: str) -> Table:
    table = Table(
        "result",
        *(heading.format(p.number) for p in status.passes),
        "total",
        title=title,
        box=box.SIMPLE_HEAD,
    )
    for column in table.columns:  # `skip: capped:reg_f_7_in_7`, `pass 3`: each read as one
        column.no_wrap = True
    for column in table.columns[1:]:
        column.justify = "right"
    codes = status.totals()
    for code in sorted(codes, key=lambda c: (-codes[c], c)):
        cells = [str(p.counts.results.get(code, "")) for p in status.passes]
        table.add_row(code, *cells, str(codes[code]))
    reasons: dict[str, int] = {}
    for p in status.passes:
        for reason, count in p.counts.skip_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    for reason in sorted(reasons, key=lambda r: (-reasons[r], r)):
        cells = [str(p.counts.skip_reasons.get(reason, "")) for p in status.passes]
        table.add_row(f"[dim]skip: {escape(reason)}[/dim]", *cells, str(reasons[reason]))
    if reasons:
        table.caption = SKIP_ROWS_CAPTION
    return table


def render_status(status: SubCampaignStatus) -> Group:
    """Header line, the pass table, and the amendment log."""
    version = (
        "own strategy" if status.strategy_version == 0 else f"strategy v{status.strategy_version}"
    )
    header = Text.from_markup(
        f"[bold]{escape(status.sub_campaign)}[/bold] of campaign {escape(status.campaign)} · "
        f"{status.day or 'planning'} · {_coloured(status.state)} · {version}"
    )
    parts: list[Any] = [header, status_table(status)]
    if status.totals() or any(p.counts.skip_reasons for p in status.passes):
        parts.append(results_table(status))
    if status.amendments:
        zone = ZoneInfo(status.timezone)

        def local(instant: str) -> datetime:
            return datetime.fromisoformat(instant).astimezone(zone)

        log = Table(
            "#",
            "at",
            "by",
            "operations",
            "outcome",
            title=f"amendments today ({status.timezone})",
            box=box.SIMPLE_HEAD,
        )
        for record in status.amendments:
            outcome = record["outcome"]
            if record.get("message"):
                outcome += f": {record['message']}"
            until = f" until {local(record['until']):%H:%M}" if record.get("until") else ""
            log.add_row(
                str(record["number"]),
                f"{local(record['received_at']):%H:%M:%S}",
                escape(record["author"]),
                escape(", ".join(record["operations"]) + until),
                escape(outcome),
            )
        parts.append(log)
    return Group(*parts)
