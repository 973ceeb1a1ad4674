"""`csm campaigns`: create campaigns, add strategy versions, look at them.

A thin layer over csm.campaigns: read the file, call one function, print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from csm.cli.database import with_database
from csm.cli.strategy import passes_table

if TYPE_CHECKING:
    from csm.campaigns import CampaignDetails

campaigns_app = typer.Typer(
    help="Campaigns and their versioned defined strategies.", no_args_is_help=True
)
console = Console()
T = TypeVar("T")

STRATEGY_OPTION = typer.Option(..., "--strategy", "-s", help="the strategy file (TOML)")
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of tables")


@campaigns_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="the campaign's name (unique)"),
    strategy: Path = STRATEGY_OPTION,
    priority: int = typer.Option(
        0,
        "--priority",
        help="higher goes first on accounts shared with other campaigns under a cap",
    ),
) -> None:
    """Create a campaign with its strategy as version 1, effective today (campaign's zone)."""
    from csm.campaigns import create_campaign
    from csm.strategy.loader import load_strategy_file

    definition, source = load_strategy_file(strategy)
    campaign, version = with_database(
        lambda engine: create_campaign(engine, name, definition, source, priority=priority)
    )
    print(
        f"created campaign {campaign.name!r} ({campaign.timezone}, priority {campaign.priority}):"
        f" strategy version {version.version} with {version.passes} passes,"
        f" effective {version.effective_from}"
    )


@campaigns_app.command("priority")
def priority_command(
    name: str = typer.Argument(..., help="the campaign's name"),
    priority: int = typer.Argument(..., help="the new priority (higher goes first)"),
) -> None:
    """Change a campaign's priority: on an account that several campaigns share under a cap,
    a running pass of a higher-priority campaign is served first (others skip it `reserved`).
    Running passes use the new priority from their next batch. Sub-campaigns started from
    now on also get the matching Temporal task priority: a busy worker serves them first."""
    from csm.campaigns import set_campaign_priority

    campaign = with_database(lambda engine: set_campaign_priority(engine, name, priority))
    print(f"campaign {campaign.name!r}: priority {campaign.priority}")


@campaigns_app.command("strategy")
def strategy_command(
    name: str = typer.Argument(..., help="the campaign's name"),
    strategy: Path = STRATEGY_OPTION,
) -> None:
    """Add a strategy version, effective from the next campaign day (today's plan stays)."""
    from csm.campaigns import add_strategy_version
    from csm.strategy.loader import load_strategy_file

    definition, source = load_strategy_file(strategy)
    version = with_database(lambda engine: add_strategy_version(engine, name, definition, source))
    print(
        f"campaign {name!r}: strategy version {version.version} with {version.passes} passes, "
        f"effective {version.effective_from}"
    )


@campaigns_app.command("show")
def show_command(
    name: str = typer.Argument(..., help="the campaign's name"),
    as_json: bool = JSON_OPTION,
) -> None:
    """A campaign's versions, and the strategy in force today with its passes and groups."""
    from csm.campaigns import describe_campaign

    details = with_database(lambda engine: describe_campaign(engine, name))
    if as_json:
        print(json.dumps(details.as_json(), indent=2))
        return
    _print_details(details)


@campaigns_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """Every campaign with its zone and strategy versions."""
    from csm.campaigns import list_campaigns

    summaries = with_database(list_campaigns)
    if as_json:
        shown = [
            {
                "id": s.id,
                "name": s.name,
                "timezone": s.timezone,
                "priority": s.priority,
                "versions": s.versions,
                "version_in_force": s.version_in_force,
                "today": s.today.isoformat(),
            }
            for s in summaries
        ]
        print(json.dumps(shown, indent=2))
        return
    table = Table("name", "timezone", "priority", "versions", "in force today", title="campaigns")
    for s in summaries:
        in_force = "-" if s.version_in_force is None else str(s.version_in_force)
        table.add_row(s.name, s.timezone, str(s.priority), str(s.versions), in_force)
    console.print(table)


def _print_details(details: CampaignDetails) -> None:
    print(
        f"campaign {details.name!r}  ·  {details.timezone}  ·  priority {details.priority}"
        f"  ·  today {details.today}"
    )
    versions = Table("version", "effective from", "passes", "", title="strategy versions")
    for v in details.versions:
        marker = "in force" if v.version == details.version_in_force else ""
        if v.effective_from > details.today:
            marker = "pending"
        versions.add_row(str(v.version), v.effective_from.isoformat(), str(v.passes), marker)
    console.print(versions)
    if details.definition is None:
        print("no strategy version is in force today")
        return
    title = f"passes of version {details.version_in_force}"
    console.print(passes_table(details.definition, title=title))
    groups = Table("group", "codes", "final", title="response groups")
    for group_name, group in details.definition.response_groups.items():
        groups.add_row(group_name, ", ".join(group.codes), group.final or "")
    console.print(groups)
