"""`csm strategy`: check a strategy file before a campaign uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from csm.cli.database import with_database
from csm.cli.layout import DOT, WideOrNarrow, records
from csm.strategy.durations import format_duration

if TYPE_CHECKING:
    from csm.strategy.model import PassDefinition, StrategyDefinition

strategy_app = typer.Typer(
    help="Strategy files: the passes of a campaign day (docs/strategy.md).", no_args_is_help=True
)
console = Console()


@strategy_app.command("validate")
def validate_command(
    file: Path = typer.Argument(..., help="the strategy file (TOML)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Check a strategy file and report every problem with its location (exit 1 if any)."""
    from csm.strategy.loader import StrategyError, load_strategy_file

    try:
        definition, _ = load_strategy_file(file)
    except StrategyError as err:
        if not as_json:
            raise
        issues = [{"location": i.location, "message": i.message} for i in err.issues]
        print(json.dumps({"valid": False, "file": str(file), "issues": issues}, indent=2))
        raise typer.Exit(1) from None
    if as_json:
        shown = {"valid": True, "file": str(file), "strategy": definition.model_dump(mode="json")}
        print(json.dumps(shown, indent=2))
        return
    noun = "pass" if len(definition.passes) == 1 else "passes"
    print(f"valid: {len(definition.passes)} {noun} ({definition.timezone})")
    console.print(passes_table(definition))


def passes_table(definition: StrategyDefinition, title: str | None = None) -> WideOrNarrow:
    """The passes of a strategy, one row each (one block each where the output is narrow):
    shared with `csm campaigns show`."""
    return WideOrNarrow(_wide_passes(definition, title), lambda: _narrow_passes(definition, title))


def _wide_passes(definition: StrategyDefinition, title: str | None) -> Table:
    table = Table("#", "name", "channel", "source", "devices", "when", "filter", title=title)
    table.columns[1].no_wrap = True  # a pass name is read whole, or the narrow layout is used
    for number, step in enumerate(definition.passes, 1):
        channel = step.channel.value
        if (agents := _agents(step)) is not None:
            channel += f"\n({agents})"
        table.add_row(
            str(number),
            escape(step.name),
            channel,
            step.source,
            ", ".join(kind.value for kind in step.devices),
            describe_schedule(step),
            escape(step.filter or "(everyone)"),
        )
    return table


def _narrow_passes(definition: StrategyDefinition, title: str | None) -> Table:
    entries = []
    for number, step in enumerate(definition.passes, 1):
        channel = step.channel.value
        if (agents := _agents(step)) is not None:
            channel += f" ({agents})"
        devices = ", ".join(kind.value for kind in step.devices)
        lines = [
            f"[bold]{escape(step.name)}[/bold]{DOT}{channel}",
            f"source {step.source}{DOT}devices {devices}{DOT}{describe_schedule(step)}",
            f"filter: {escape(step.filter or '(everyone)')}",
        ]
        entries.append((str(number), lines))
    return records(title, entries, heading="pass")


def _agents(step: PassDefinition) -> str | None:
    """`agents: sales, predictive` for a pass with agents, None for one without."""
    if step.agent_group is None:
        return None
    mode = f", {step.pacing.mode}" if step.channel.value == "dialer" else ""
    return f"agents: {step.agent_group}{mode}"


def describe_schedule(step: PassDefinition) -> str:
    """ "09:00-12:00 contact, after 1h, +1 day, mon-fri" — a pass's schedule in a few words."""
    parts = []
    if step.alongside:
        parts.append("alongside the previous pass")
    if step.window is not None:
        parts.append(f"{step.window.start:%H:%M}-{step.window.end:%H:%M} {step.window.zone}")
    if step.after is not None:
        parts.append(f"after {format_duration(step.after)}")
    if step.days_to_wait:
        parts.append(f"+{step.days_to_wait} day{'s' if step.days_to_wait > 1 else ''}")
    if len(step.allowed_days) < 7:
        parts.append(",".join(step.allowed_days))
    return ", ".join(parts) or "any time"


@strategy_app.command("preview")
def preview_command(
    campaign: str | None = typer.Option(
        None, "--campaign", "-c", help="use the campaign's strategy in force today"
    ),
    list_name: str | None = typer.Option(None, "--list", "-l", help="the contact list to count"),
    strategy: Path | None = typer.Option(
        None, "--strategy", "-s", help="a strategy file (TOML) instead of a campaign's"
    ),
    sub_campaign: str | None = typer.Option(
        None,
        "--sub-campaign",
        help="count with this sub-campaign's ledger (attempts, last results); "
        "its list and strategy are the defaults",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """How many contacts of a list each pass due today would select, right now.

    Uses the same selection query as a running pass, so what you preview is
    what a pass would take if it started now. Without --sub-campaign nobody
    has attempts yet (as before a launch).
    """
    from csm.errors import CsmError
    from csm.preview import preview_strategy
    from csm.strategy.loader import load_strategy_file

    if campaign is None and strategy is None and sub_campaign is None:
        raise CsmError("give --campaign or --strategy (or --sub-campaign) to preview")
    if campaign is not None and strategy is not None:
        raise CsmError("give --campaign or --strategy, not both")
    if list_name is None and sub_campaign is None:
        raise CsmError("give the list to count with --list")
    definition = load_strategy_file(strategy)[0] if strategy is not None else None
    preview = with_database(
        lambda engine: preview_strategy(
            engine,
            list_name=list_name,
            campaign=campaign,
            strategy=definition,
            sub_campaign=sub_campaign,
        )
    )
    if as_json:
        print(json.dumps(preview.as_json(), indent=2))
        return
    against = f" with the ledger of {preview.sub_campaign!r}" if preview.sub_campaign else ""
    print(
        f"list {preview.list_name!r}: {preview.list_size} contacts · {preview.day} "
        f"({preview.timezone}){against}"
    )
    table = Table("#", "name", "channel", "filter", "selected", title="passes due today")
    for p in preview.passes:
        scope = ""
        if p.among_pass is not None:
            how = "selection" if p.among_frozen else "preview"
            scope = f" [dim](among pass {p.among_pass}'s {how})[/dim]"
        table.add_row(
            str(p.number),
            escape(p.name),
            p.channel,
            escape(p.filter or "(everyone)") + scope,
            str(p.selected),
        )
    console.print(table)
    for later in preview.later:
        print(f"pass {later.number} {later.name!r} is due on {later.day}, not today")
