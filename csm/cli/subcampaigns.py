"""`csm start | amend | pause | resume | stop | status`: run and steer sub-campaigns.

A thin layer over csm.control: managers change a running sub-campaign through the
workflow's validated updates (`amend`, `lifecycle`), so a bad change is refused on the
spot with the reason, and nothing is half-applied. They watch it through the workflow's
`plan` query joined with live counts from the attempt ledger (`csm.results`). Every
Temporal failure is one line saying what failed and where (csm.control.errors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from csm.cli.status_view import render_status
from csm.cli.temporal import with_temporal, with_temporal_reads

# Temporal's client, SQLAlchemy's asyncio layer and the pydantic models load inside the
# commands that use them: `csm --help` and `csm status --help` never pay for them.
if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client

    from csm.lookups import Db, SubCampaignRef
    from csm.results import SubCampaignStatus
    from csm.settings import Settings
    from csm.subcampaign_types import LifecycleAction

console = Console()

SUB_ARGUMENT = typer.Argument(..., help="the sub-campaign: its workflow id, or its name if unique")
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


async def resolve(db: Db, reference: str) -> SubCampaignRef:
    """The sub-campaign a command names (its workflow id, or its name if unique)."""
    from csm.lookups import find_sub_campaign

    return await find_sub_campaign(db, reference)


# ---- start ---------------------------------------------------------------------------


def start_command(
    campaign: str = typer.Option(..., "--campaign", "-c", help="the campaign to run"),
    list_name: str = typer.Option(..., "--list", "-l", help="the contact list to run it through"),
    name: str | None = typer.Option(
        None, "--name", "-n", help="the sub-campaign's name (default: the list's name)"
    ),
    strategy: Path | None = typer.Option(
        None,
        "--strategy",
        "-s",
        help="a strategy file (TOML) for this sub-campaign only, instead of the campaign's",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a sub-campaign (a campaign run through one list) and start its workflow.

    Starting the same campaign, list and name again finds the running workflow
    instead of starting a second one. A worker (`csm worker`) on CSM_TASK_QUEUE
    runs it; watch it with `csm status`.
    """
    from csm.agents import groups_without_agents
    from csm.campaigns import campaign_today, get_campaign, strategy_in_force
    from csm.control import refuse_if_stopped, start_sub_campaign, workflow_url
    from csm.strategy.loader import load_strategy_file
    from csm.subcampaigns import workflow_id_for

    definition = load_strategy_file(strategy)[0] if strategy is not None else None

    async def work(client: Client, engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        running = await refuse_if_stopped(client, workflow_id_for(campaign, name or list_name))
        launched = await start_sub_campaign(
            client,
            engine,
            campaign=campaign,
            list_name=list_name,
            task_queue=settings.task_queue,
            name=name,
            strategy=definition,
        )
        ref = launched.sub_campaign
        strategy_used = definition
        if strategy_used is None:
            found = await get_campaign(engine, campaign)
            strategy_used = (
                await strategy_in_force(engine, found.id, campaign_today(found.timezone))
            )[1]
        unstaffed = await groups_without_agents(
            engine, {g for p in strategy_used.passes if (g := p.agent_group)}
        )
        return {
            "sub_campaign": ref.name,
            "campaign": ref.campaign,
            "list": list_name,
            "workflow_id": ref.workflow_id,
            "run_id": launched.handle.result_run_id or "",
            "task_queue": settings.task_queue,
            "temporal_ui": workflow_url(settings, ref.workflow_id),
            "already_running": running,
            "groups_without_agents": unstaffed,
        }

    shown = with_temporal(work)
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    what = "is running already" if shown["already_running"] else "started"
    print(f"sub-campaign {shown['sub_campaign']!r} of campaign {shown['campaign']!r} {what}")
    print(f"  workflow id: {shown['workflow_id']}  (task queue {shown['task_queue']})")
    print(f"  Temporal UI: {shown['temporal_ui']}")
    print(f"  watch it:    csm status {shown['workflow_id']} --watch")
    for group in shown["groups_without_agents"]:
        print(
            f"  warning: agent group {group!r} has no agents: its passes wait for some"
            f" (csm agents set --group {group} --count N)"
        )


# ---- amend ---------------------------------------------------------------------------


def amend_command(
    sub: str = SUB_ARGUMENT,
    skip_pass: list[str] = typer.Option(
        [], "--skip-pass", metavar="PASS", help="skip a pass that has not started (repeatable)"
    ),
    set_filter: tuple[str, str] | None = typer.Option(
        None, "--set-filter", metavar="PASS EXPR", help="replace a pass's filter (docs/filters.md)"
    ),
    set_channel: tuple[str, str] | None = typer.Option(
        None, "--set-channel", metavar="PASS CHANNEL", help="move a pass to voice|dialer|sms|email"
    ),
    file: Path | None = typer.Option(
        None,
        "--file",
        "-f",
        metavar="AMENDMENT.json",
        help='an amendment as JSON: {"operations": [{"op": "skip", "target": 3}, ...], '
        '"until": "14:00", "reason": "..."} (docs/cli.md lists every operation)',
    ),
    until: str | None = typer.Option(
        None,
        "--until",
        metavar="HH:MM",
        help="end the amendment at this time today, campaign's zone (then the defined plan "
        "applies again to passes not started); default: the end of the day",
    ),
    reason: str | None = typer.Option(None, "--reason", help="why: kept in the amendment log"),
    author: str | None = typer.Option(None, "--author", help="who asks (default: $USER)"),
    as_json: bool = typer.Option(False, "--json", help="print the new plan as JSON"),
) -> None:
    """Change today's plan of a running sub-campaign (passes that have not started only).

    PASS is a pass number or name. Flags combine into one amendment, applied
    all or nothing: the workflow validates it and answers with the new plan,
    or refuses it with the reason (exit 1). Tomorrow runs the defined strategy.
    """
    from csm.cli.amendment_input import build_amendment, given_once

    given_once("--set-filter", "--set-channel")

    async def work(client: Client, engine: AsyncEngine, settings: Settings) -> SubCampaignStatus:
        from csm.campaigns import get_campaign
        from csm.control import amend
        from csm.results import combine

        ref = await resolve(engine, sub)
        timezone = (await get_campaign(engine, ref.campaign)).timezone
        amendment = build_amendment(
            skip=skip_pass,
            set_filter=set_filter,
            set_channel=set_channel,
            file=file,
            until=until,
            reason=reason,
            author=author,
            timezone=timezone,
        )
        return await combine(engine, ref, await amend(client, ref, amendment))

    status = with_temporal(work)
    if as_json:
        print(json.dumps(status.as_json(), indent=2))
        return
    print(f"amended sub-campaign {status.sub_campaign!r}: the new plan")
    console.print(render_status(status))


# ---- pause / resume / stop -------------------------------------------------------------


def lifecycle(action: LifecycleAction, sub: str) -> None:
    """Send the `lifecycle` update and print the new state; a refusal is one line (exit 1)."""

    async def work(client: Client, engine: AsyncEngine, settings: Settings) -> tuple[str, str]:
        from csm.control import change_lifecycle

        ref = await resolve(engine, sub)
        return ref.name, await change_lifecycle(client, ref, action)

    name, state = with_temporal(work)
    print(f"sub-campaign {name!r}: {state}")


def pause_command(sub: str = SUB_ARGUMENT) -> None:
    """Pause a running sub-campaign: the running pass finishes its batch and waits.

    Nothing is lost or repeated: `csm resume` continues the pass from its cursor.
    """
    lifecycle("pause", sub)


def resume_command(sub: str = SUB_ARGUMENT) -> None:
    """Resume a paused sub-campaign where it stopped (a stopped one cannot resume)."""
    lifecycle("resume", sub)


def stop_command(sub: str = SUB_ARGUMENT) -> None:
    """Stop a sub-campaign for good: the running pass skips the rest (reason `stopped`).

    Stop is final; to run the list again, start a new sub-campaign with --name.
    """
    lifecycle("stop", sub)


# ---- status ---------------------------------------------------------------------------


async def watch_status(
    client: Client,
    db: Db,
    ref: SubCampaignRef,
    *,
    as_json: bool,
    interval: float = 1.0,
) -> SubCampaignStatus:
    """Refresh every `interval` seconds until the workflow closes (or Ctrl-C)."""
    import asyncio

    from rich.live import Live
    from temporalio.client import WorkflowExecutionStatus

    from csm.control import read_status

    handle = client.get_workflow_handle(ref.workflow_id)

    async def closed(status: SubCampaignStatus) -> bool:
        if status.state not in ("stopped", "completed"):
            return False
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    status = await read_status(client, db, ref)
    if as_json:
        while True:
            print(json.dumps(status.as_json()), flush=True)
            if await closed(status):
                return status
            await asyncio.sleep(interval)
            status = await read_status(client, db, ref)
    with Live(render_status(status), console=console, auto_refresh=False) as live:
        while not await closed(status):
            await asyncio.sleep(interval)
            status = await read_status(client, db, ref)
            live.update(render_status(status), refresh=True)
    return status


def status_command(
    sub: str = SUB_ARGUMENT,
    watch: bool = typer.Option(
        False,
        "--watch",
        "-w",
        help="refresh every second until Ctrl-C or the workflow closes "
        "(with --json: one JSON object per line)",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Today's plan of a sub-campaign with live per-pass counts by result code.

    Counts come from the attempt ledger while a pass runs, so they move
    attempt by attempt. Works on completed and stopped sub-campaigns too.
    """

    async def work(
        client: Client, connection: asyncpg.Connection, settings: Settings
    ) -> SubCampaignStatus:
        from csm.control import read_status, translated

        ref = await resolve(connection, sub)
        if not watch:
            return await read_status(client, connection, ref)
        async with translated(client, ref, "read the status of"):
            return await watch_status(client, connection, ref, as_json=as_json)

    try:  # plain asyncpg: the status path loads neither SQLAlchemy nor the workflow module
        status = with_temporal_reads(work)
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends
        return
    if watch:
        return
    if as_json:
        print(json.dumps(status.as_json(), indent=2))
        return
    console.print(render_status(status))
