"""`csm start | amend | pause | resume | stop | status`: run and steer sub-campaigns.

Managers change a running sub-campaign through the workflow's validated
updates (`amend`, `lifecycle`), so a bad change is refused on the spot with
the reason, and nothing is half-applied. They watch it through the workflow's
`plan` query joined with live counts from the attempt ledger
(`csm.results`). Every Temporal failure becomes one line saying what failed
and where (which sub-campaign, which server, which task queue).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from csm.cli.campaigns import with_connection, with_database
from csm.cli.layout import DOT, WideOrNarrow, records
from csm.errors import CsmError
from csm.files import read_small_text
from csm.states import state_key, sub_campaign_state
from csm.vocabulary import Channel

# Temporal's client, SQLAlchemy's asyncio layer and the pydantic models load inside the
# commands that use them: `csm --help` and `csm status --help` never pay for them.
if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client, WorkflowHandle

    from csm.amendments import Amendment
    from csm.lookups import Db, SubCampaignRef
    from csm.results import PassResult, SubCampaignStatus
    from csm.settings import Settings

console = Console()
T = TypeVar("T")

SUB_ARGUMENT = typer.Argument(..., help="the sub-campaign: its workflow id, or its name if unique")
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of a table")


class SubCampaignCommandError(CsmError):
    """A sub-campaign command that failed: refused by the workflow, or Temporal unreachable."""


# ---- Temporal plumbing -----------------------------------------------------------


def workflow_url(settings: Settings, workflow_id: str) -> str:
    """The Temporal UI page of a workflow (its history, current details, search attributes)."""
    base = settings.temporal_ui_url.rstrip("/")
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client, or one line saying which server could not be reached."""
    from csm.temporal_client import connect

    try:
        return await connect(settings)
    except RuntimeError as err:
        reason = str(err).removeprefix("Failed client connect: ")
        inner = re.search(r'message: "([^"]+)"', reason)  # the OS error inside tonic's
        reason = inner.group(1) if inner else reason[:200]
        raise SubCampaignCommandError(
            f"cannot reach Temporal at {settings.temporal_address} "
            f"(namespace {settings.temporal_namespace}): {reason}; "
            "is it running (`csm dev up`), or is CSM_TEMPORAL_ADDRESS wrong?"
        ) from None


def with_temporal(work: Callable[[Client, AsyncEngine, Settings], Awaitable[T]]) -> T:
    """Run `work` with a Temporal client and a database engine from the settings."""
    from csm.settings import load_settings

    settings = load_settings()

    async def run(engine: AsyncEngine) -> T:
        client = await connect_temporal(settings)
        return await work(client, engine, settings)

    return with_database(run)


def with_temporal_reads(work: Callable[[Client, asyncpg.Connection, Settings], Awaitable[T]]) -> T:
    """Like `with_temporal`, on one plain asyncpg connection: for `csm status`, which only
    reads (csm.lookups) and must start fast, so it never loads SQLAlchemy."""
    from csm.settings import load_settings

    settings = load_settings()

    async def run(connection: asyncpg.Connection) -> T:
        client = await connect_temporal(settings)
        return await work(client, connection, settings)

    return with_connection(run, settings.effective_database_url)


@contextlib.asynccontextmanager
async def temporal_errors(
    handle: WorkflowHandle, ref: SubCampaignRef, settings: Settings, doing: str
) -> AsyncIterator[None]:
    """Turn what Temporal raises into one clear CsmError about this sub-campaign.

    `doing` words the request ("amend", "pause", "read the status of") for messages.
    """
    from temporalio.client import (
        RPCTimeoutOrCancelledError,
        WorkflowQueryFailedError,
        WorkflowUpdateFailedError,
    )
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    from csm.results import QUERY_TIMEOUT

    who = f"sub-campaign {ref.name!r} (workflow {ref.workflow_id})"
    try:
        yield
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise SubCampaignCommandError(f"cannot {doing} {who}: {reason}") from None
    except RPCTimeoutOrCancelledError:
        queue = await _task_queue(handle)
        raise SubCampaignCommandError(
            f"cannot {doing} {who}: no worker took the request within "
            f"{QUERY_TIMEOUT.total_seconds():.0f}s (it may still apply when one does); is a "
            f"worker (`csm worker`) serving task queue {queue!r} at {settings.temporal_address}?"
        ) from None
    except WorkflowQueryFailedError as err:
        raise SubCampaignCommandError(f"cannot {doing} {who}: the query failed: {err}") from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and "already completed" in err.message:
            state = await _closed_state(handle)
            final = " (stop is final)" if state == "stopped" else ""
            raise SubCampaignCommandError(
                f"cannot {doing} {who}: the sub-campaign is {state}{final}"
            ) from None
        if err.status == RPCStatusCode.NOT_FOUND:
            raise SubCampaignCommandError(
                f"{who} was not found on Temporal at {settings.temporal_address} "
                f"(namespace {settings.temporal_namespace}): start it with `csm start`, "
                "or point CSM_TEMPORAL_ADDRESS at the server that runs it"
            ) from None
        no_poller = err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in err.message
        if no_poller or err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            queue = await _task_queue(handle)
            raise SubCampaignCommandError(
                f"cannot {doing} {who}: no worker answered; is a worker (`csm worker`) "
                f"serving task queue {queue!r} at {settings.temporal_address}?"
            ) from None
        if err.status == RPCStatusCode.UNAVAILABLE:
            raise SubCampaignCommandError(
                f"cannot {doing} {who}: Temporal at {settings.temporal_address} is unavailable "
                f"({err.message})"
            ) from None
        raise SubCampaignCommandError(
            f"cannot {doing} {who}: Temporal said {err.status.name}: {err.message}"
        ) from None


async def _closed_state(handle: WorkflowHandle) -> str:
    """How a closed sub-campaign ended, from its search attribute (no worker needed)."""
    try:
        description = await handle.describe()
    except Exception:
        return "closed"
    recorded = description.typed_search_attributes.get(state_key())
    return sub_campaign_state(description.status, recorded)


async def _task_queue(handle: WorkflowHandle) -> str:
    try:
        return (await handle.describe()).task_queue
    except Exception:
        return "?"


async def resolve(db: Db, client: Client, reference: str) -> tuple[SubCampaignRef, Any]:
    """The sub-campaign's row and a handle on its latest run (across days: continue-as-new)."""
    from csm.lookups import find_sub_campaign

    ref = await find_sub_campaign(db, reference)
    return ref, client.get_workflow_handle(ref.workflow_id)


# ---- rendering -----------------------------------------------------------------------

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
        state = _state(p)
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
            f"[bold]{escape(p.name)}[/bold]{DOT}{p.channel}{DOT}{_state(p)}",
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


# ---- start ---------------------------------------------------------------------------


async def refuse_if_stopped(client: Client, workflow_id: str) -> bool:
    """Stop is final: starting a stopped sub-campaign again would quietly resume it.

    Temporal would accept a new run under the same workflow id once the old one
    has closed, so the check is ours: the last run's `CsmState` says how it ended.
    Returns whether the workflow is running already (then `start` just finds it).
    """
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False  # never started: go ahead
        raise SubCampaignCommandError(
            f"cannot look up workflow {workflow_id} on Temporal: {err.status.name}: {err.message}"
        ) from None
    if description.status == WorkflowExecutionStatus.RUNNING:
        return True
    state = description.typed_search_attributes.get(state_key())
    if state == "stopped":
        raise SubCampaignCommandError(
            f"sub-campaign workflow {workflow_id} was stopped, and stop is final; "
            "to work the list again, start a new sub-campaign with --name"
        )
    return False


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
    from csm.launch import start_sub_campaign
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

HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def until_instant(text: str, timezone: str, now: datetime | None = None) -> datetime:
    """`HH:MM` today on the campaign's clock, as a UTC instant; a past time is an error.

    The workflow has no time-zone database (it runs in Temporal's sandbox), so
    the local time is resolved here, on the client, and travels as UTC.
    """
    from csm.schedule import local_instant

    match = HHMM.match(text.strip())
    if match is None:
        raise SubCampaignCommandError(
            f"--until {text!r}: expected HH:MM (24-hour clock, {timezone} time), e.g. 14:00"
        )
    local_now = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    clock = time(int(match.group(1)), int(match.group(2)))
    instant = local_instant(local_now.date(), clock, timezone)
    if instant <= local_now:
        raise SubCampaignCommandError(
            f"--until {clock:%H:%M} is already past: it is {local_now:%H:%M} in {timezone}, "
            "the campaign's zone (an amendment ends at the latest at the end of the day)"
        )
    return instant


def load_amendment_file(path: Path, timezone: str, now: datetime | None = None) -> Amendment:
    """An amendment from JSON: an object like `Amendment`, or a bare list of operations.

    `until` may be "HH:MM" (today, campaign's zone) or an ISO instant with its offset.
    Every error names the file and what is wrong in it.
    """
    from csm.amendments import AmendmentRejected, parse_amendment

    text = read_small_text(path, f"amendment file {str(path)!r}", error=SubCampaignCommandError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SubCampaignCommandError(
            f"{path}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    if isinstance(data, list):
        data = {"operations": data}
    if not isinstance(data, dict):
        raise SubCampaignCommandError(
            f"{path}: expected a JSON object with 'operations' (or a list of operations), "
            f"found {type(data).__name__}"
        )
    until = data.get("until")
    if isinstance(until, str) and HHMM.match(until.strip()):
        try:
            data = {**data, "until": until_instant(until, timezone, now).isoformat()}
        except SubCampaignCommandError as err:
            raise SubCampaignCommandError(f"{path}: {err}".replace("--until", "until")) from None
    try:
        return parse_amendment(data)
    except AmendmentRejected as err:
        raise SubCampaignCommandError(f"{path}: {err}") from None


def _given_once(*flags: str) -> None:
    """Typer keeps only the last of a repeated two-value option: refuse rather than drop one."""
    for flag in flags:
        count = sum(1 for arg in sys.argv[1:] if arg == flag or arg.startswith(flag + "="))
        if count > 1:
            raise SubCampaignCommandError(
                f"{flag} may be given once per command; put several changes in an amendment "
                "file (--file)"
            )


def build_amendment(
    *,
    skip: list[str],
    set_filter: tuple[str, str] | None,
    set_channel: tuple[str, str] | None,
    file: Path | None,
    until: str | None,
    reason: str | None,
    author: str | None,
    timezone: str,
    now: datetime | None = None,
) -> Amendment:
    """One amendment from the command's flags, after the operations of `--file` if any.

    Order of operations: the file's, then --set-filter, --set-channel, --skip-pass.
    """
    from csm.amendments import AmendmentRejected, parse_amendment

    base: dict[str, Any] = {"operations": []}
    if file is not None:
        base = load_amendment_file(file, timezone, now).model_dump(mode="json")
    operations: list[dict[str, Any]] = list(base["operations"])
    if set_filter is not None:
        target, expression = set_filter
        operations.append({"op": "set_filter", "target": _pass(target), "filter": expression})
    if set_channel is not None:
        target, channel = set_channel
        if channel not in {c.value for c in Channel}:
            choices = ", ".join(c.value for c in Channel)
            raise SubCampaignCommandError(
                f"--set-channel {target} {channel}: unknown channel {channel!r} ({choices})"
            )
        operations.append({"op": "set_channel", "target": _pass(target), "channel": channel})
    operations += [{"op": "skip", "target": _pass(target)} for target in skip]
    if not operations:
        raise SubCampaignCommandError(
            "nothing to amend: give --skip-pass, --set-filter, --set-channel or --file"
        )
    data: dict[str, Any] = {
        "operations": operations,
        "until": base.get("until"),
        "author": author or _given(base.get("author")) or _user(),
        "reason": reason if reason is not None else base.get("reason", ""),
    }
    if until is not None:
        data["until"] = until_instant(until, timezone, now).isoformat()
    try:
        return parse_amendment(data)
    except AmendmentRejected as err:
        raise SubCampaignCommandError(str(err)) from None


def _pass(reference: str) -> int | str:
    """A pass number as a number (the log then reads `skip 3`), else the pass's name."""
    text = reference.strip()
    return int(text) if text.isdigit() else text


def _given(author: str | None) -> str | None:
    """A file's author, unless it is the model's placeholder for none."""
    return author if author and author != "unknown" else None


def _user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except (KeyError, OSError):
        return "unknown"


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
    _given_once("--set-filter", "--set-channel")

    async def work(client: Client, engine: AsyncEngine, settings: Settings) -> SubCampaignStatus:
        from csm.campaigns import get_campaign
        from csm.results import QUERY_TIMEOUT, combine
        from workflows.subcampaign import SubCampaignWorkflow

        ref, handle = await resolve(engine, client, sub)
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
        async with temporal_errors(handle, ref, settings, "amend"):
            plan = await handle.execute_update(
                SubCampaignWorkflow.amend_update, amendment, rpc_timeout=QUERY_TIMEOUT
            )
        return await combine(engine, ref, plan)

    status = with_temporal(work)
    if as_json:
        print(json.dumps(status.as_json(), indent=2))
        return
    print(f"amended sub-campaign {status.sub_campaign!r}: the new plan")
    console.print(render_status(status))


# ---- pause / resume / stop -------------------------------------------------------------


def lifecycle(action: str, sub: str) -> None:
    """Send the `lifecycle` update and print the new state; a refusal is one line (exit 1)."""

    async def work(client: Client, engine: AsyncEngine, settings: Settings) -> tuple[str, str]:
        from csm.results import QUERY_TIMEOUT
        from workflows.subcampaign import SubCampaignWorkflow

        ref, handle = await resolve(engine, client, sub)
        async with temporal_errors(handle, ref, settings, action):
            state = await handle.execute_update(
                SubCampaignWorkflow.lifecycle, action, rpc_timeout=QUERY_TIMEOUT
            )
        return ref.name, state

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
    handle: WorkflowHandle,
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

    from csm.results import live_status

    async def closed(status: SubCampaignStatus) -> bool:
        if status.state not in ("stopped", "completed"):
            return False
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    status = await live_status(handle, db, ref)
    if as_json:
        while True:
            print(json.dumps(status.as_json()), flush=True)
            if await closed(status):
                return status
            await asyncio.sleep(interval)
            status = await live_status(handle, db, ref)
    with Live(render_status(status), console=console, auto_refresh=False) as live:
        while not await closed(status):
            await asyncio.sleep(interval)
            status = await live_status(handle, db, ref)
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
        from csm.results import live_status

        ref, handle = await resolve(connection, client, sub)
        async with temporal_errors(handle, ref, settings, "read the status of"):
            if watch:
                return await watch_status(handle, connection, ref, as_json=as_json)
            return await live_status(handle, connection, ref)

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
