"""`csm`: the command line of the campaign strategy manager."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from csm.cli.agents import agents_app
from csm.cli.campaigns import campaigns_app
from csm.cli.contacts import contacts_app
from csm.cli.inbound import inbound_app
from csm.cli.lists import lists_app
from csm.cli.policy import policy_app
from csm.cli.results import results_command
from csm.cli.strategy import strategy_app
from csm.cli.subcampaigns import (
    amend_command,
    pause_command,
    resume_command,
    start_command,
    status_command,
    stop_command,
)
from csm.cli.suppress import suppress_app
from csm.cli.web import web_command
from csm.cli.webhooks import webhooks_command
from csm.exit import run_and_exit

# Every module imported above is light (typer, rich, the standard library): what a
# command needs beyond that (Temporal, SQLAlchemy, pydantic models, the list importer)
# it imports when it runs, so `csm --help` starts in a fraction of a second.
# tests/test_cli.py checks that importing this module loads none of the heavy ones.

app = typer.Typer(
    name="csm",
    help="Campaign strategy manager: outbound campaigns in passes, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dev_app = typer.Typer(
    help="The embedded development stack (Temporal, PostgreSQL, SMTP sink).", no_args_is_help=True
)
db_app = typer.Typer(help="The csm database: migrations.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(db_app, name="db")
app.add_typer(lists_app, name="lists")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(strategy_app, name="strategy")
app.add_typer(suppress_app, name="suppress")
app.add_typer(inbound_app, name="inbound")
app.add_typer(policy_app, name="policy")
app.add_typer(contacts_app, name="contacts")
app.add_typer(agents_app, name="agents")
app.command("start")(start_command)
app.command("amend")(amend_command)
app.command("pause")(pause_command)
app.command("resume")(resume_command)
app.command("stop")(stop_command)
app.command("status")(status_command)
app.command("web")(web_command)
app.command("webhooks")(webhooks_command)
app.command("results")(results_command)

console = Console()
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


@app.command("config")
def config_command(as_json: bool = JSON_OPTION) -> None:
    """Print the effective settings (environment and .env), secrets masked."""
    from csm.settings import load_settings

    shown = load_settings().masked()
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    table = Table("setting", "value", title="csm settings")
    for name, value in shown.items():
        table.add_row(name, "" if value is None else value)
    console.print(table)


@app.command("worker")
def worker_command() -> None:
    """Run a worker with every workflow and activity until Ctrl-C / SIGTERM."""
    import asyncio
    import logging

    from csm.settings import load_settings
    from worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run_worker(load_settings()))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply the database migrations (to the latest by default)."""
    from csm.database import upgrade
    from csm.settings import load_settings

    settings = load_settings()
    upgrade(settings.effective_database_url, revision)
    console.print(f"database migrated to {revision}")


@dev_app.command("up")
def dev_up() -> None:
    """Start the embedded stack in the background; harmless when it already runs."""
    import asyncio

    from csm.devstack.stack import DevStack
    from csm.settings import load_settings

    stack = DevStack(load_settings())
    statuses = asyncio.run(stack.up(report=console.print))
    _print_status(statuses)


@dev_app.command("down")
def dev_down() -> None:
    """Stop exactly the processes `csm dev up` started."""
    from csm.devstack.stack import DevStack
    from csm.settings import load_settings

    DevStack(load_settings()).down(report=console.print)


@dev_app.command("status")
def dev_status(as_json: bool = JSON_OPTION) -> None:
    """Show what runs where; exit code 1 when a service is not running."""
    from csm.devstack.stack import DevStack
    from csm.settings import load_settings

    statuses = DevStack(load_settings()).status()
    if as_json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        _print_status(statuses)
    if any(s.state not in ("running", "external") for s in statuses):
        raise typer.Exit(1)


@dev_app.command("check")
def dev_check(
    smtp: bool = typer.Option(True, help="also check the SMTP server"),
) -> None:
    """Run a workflow through Temporal, an in-process worker, the database and SMTP."""
    import asyncio

    from csm.devstack.check import check_stack
    from csm.settings import load_settings

    health = asyncio.run(check_stack(load_settings(), check_smtp=smtp))
    console.print(f"[green]healthy[/green]: {health}")


@app.command("demo")
def demo_command(
    contacts: int = typer.Option(
        2000, "--contacts", min=1, max=100_000, help="synthetic contacts to generate"
    ),
    seed: int = typer.Option(
        1,
        "--seed",
        min=0,
        max=2**63 - 1,
        help="seed of the synthetic list (same seed, same list)",
    ),
) -> None:
    """A sub-campaign end to end on the embedded stack, in under two minutes.

    Starts the stack if needed, generates a seeded synthetic list, creates a
    campaign from examples/demo.toml, runs it on an in-process worker while
    showing live progress, amends a pass on the way, and ends with the
    per-pass results, the Temporal UI link and where the e-mails landed.
    """
    import asyncio

    from csm.cli.demo import run_demo
    from csm.settings import load_settings

    asyncio.run(run_demo(load_settings(), contacts=contacts, seed=seed, console=console))


def _print_status(statuses: list) -> None:
    table = Table("service", "state", "address", "pid", "detail", title="csm dev stack")
    colours = {"running": "green", "external": "cyan"}
    for s in statuses:
        colour = colours.get(s.state, "red")
        table.add_row(
            s.name, f"[{colour}]{s.state}[/{colour}]", s.address, str(s.pid or ""), s.detail
        )
    console.print(table)


def main() -> None:
    run_and_exit(lambda: app(prog_name="csm"))
