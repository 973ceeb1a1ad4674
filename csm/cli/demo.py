"""`csm demo`: one sub-campaign end to end on the embedded stack, watched live.

The demo is the shortest proof that every real part works together: the
Temporal dev server, PostgreSQL, the SMTP sink, a worker, the strategy file,
the pass activity with its exact ledger, a same-day amendment by validated
update, and live results. Each run uses fresh names (a new list, a new
campaign), so it can run again and again on the same stack; the list is
seeded, so the same seed gives the same contacts.

The steps are functions, so a test or a notebook can run them one by one;
`run_demo` strings them together for the command.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from csm.cli.status_view import render_status, results_table, status_table
from csm.control import read_plan, read_status, workflow_url
from csm.devstack.smtp_sink import messages
from csm.errors import CsmError
from csm.results import SubCampaignStatus
from csm.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client, WorkflowHandle

    from csm.strategy.model import StrategyDefinition
    from csm.subcampaigns import SubCampaignRef

#: The demo's strategy, next to the other examples (docs/strategy.md explains each key).
DEMO_STRATEGY = Path(__file__).resolve().parents[2] / "examples" / "demo.toml"
#: The whole sub-campaign must end well inside the demo's two-minute promise.
RUN_TIMEOUT_SECONDS = 100.0
#: What the demo's amendment adds to the SMS pass's filter, and why.
AMEND_CLAUSE = "attributes.days_past_due >= 30"
AMEND_REASON = "demo: text only accounts 30 or more days past due"


class DemoError(CsmError):
    """The demo could not run, or its sub-campaign did not finish in time."""


@dataclass(frozen=True)
class DemoNames:
    campaign: str
    list_name: str


@dataclass(frozen=True)
class DemoResult:
    names: DemoNames
    workflow_id: str
    status: SubCampaignStatus
    amendment: str  # what the amendment did, or why it was not applied
    mail_dir: Path
    emails: int  # messages that landed in the sink during this run
    elapsed: float


def demo_names(now: datetime | None = None) -> DemoNames:
    """Fresh, readable names for one run: demo-20260301-141502-ab12."""
    stamp = f"{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    return DemoNames(campaign=f"demo-{stamp}", list_name=f"demo-list-{stamp}")


def count_messages(mail_dir: Path) -> int:
    """E-mails stored by the SMTP sink (one `.eml` file each)."""
    return len(messages(mail_dir))


async def start_stack(settings: Settings, report: Callable[[str], None]) -> Path:
    """Bring the embedded stack up (idempotent); returns where the sink stores e-mails."""
    from csm.devstack.stack import DevStack

    stack = DevStack(settings)
    await stack.up(report=report)
    return stack.mail_dir


def load_demo_strategy(strategy: Path) -> tuple[StrategyDefinition, str]:
    """The demo's strategy and its text (read before anything is created)."""
    from csm.strategy.loader import load_strategy_file

    if not strategy.is_file():
        raise DemoError(f"demo strategy {strategy} is missing (it ships in examples/)")
    return load_strategy_file(strategy)


async def prepare(
    engine: AsyncEngine,
    names: DemoNames,
    *,
    contacts: int,
    seed: int,
    strategy: tuple[StrategyDefinition, str],
) -> None:
    """A seeded synthetic list and a campaign whose strategy is the demo file, with the
    demo's contact policy (DEMO_POLICY)."""
    from csm.campaigns import create_campaign
    from csm.compliance.store import set_policy
    from csm.synthetic import create_synthetic_list

    definition, text = strategy
    await create_synthetic_list(engine, names.list_name, contacts=contacts, seed=seed)
    await create_campaign(engine, names.campaign, definition, text)
    await set_policy(engine, DEMO_POLICY, campaign=names.campaign, author="csm demo")


#: Regulation F's caps, at any hour: the demo must show passes whenever it is run, while
#: the default policy allows calls and texts only 08:00-21:00 on each contact's clock.
DEMO_POLICY = """\
[hours]
voice = "any"
sms = "any"
email = "any"

[[caps]]
name = "reg_f_7_in_7"
max = 7
period = "7d"
channels = ["voice", "dialer"]

[conversation_pause]
days = 7
"""


def amendment_due(status: SubCampaignStatus) -> int | None:
    """The SMS pass to amend once the day is under way: a pass has started, it has not."""
    started = any(p.status in ("running", "done") for p in status.passes)
    for p in status.passes:
        if p.channel == "sms" and p.status in ("pending", "waiting"):
            return p.number if started else None
    return None


async def amend_sms_pass(
    client: Client, ref: SubCampaignRef, number: int, current_filter: str
) -> str:
    """Narrow the SMS pass's filter by the `amend` update; a sentence saying what happened."""
    from csm.amendments import Amendment, SetFilter
    from csm.control import Refused, amend

    new_filter = f"({current_filter}) and {AMEND_CLAUSE}" if current_filter else AMEND_CLAUSE
    amendment = Amendment(
        operations=[SetFilter(target=number, filter=new_filter)],
        author="csm demo",
        reason=AMEND_REASON,
    )
    try:
        await amend(client, ref, amendment, patient=True)  # its own worker is there
    except Refused as err:
        return f"amendment refused by the workflow: {err.reason}"
    return f"amended pass {number} by update: filter is now {new_filter!r} ({AMEND_REASON})"


async def current_filter(client: Client, ref: SubCampaignRef, number: int) -> str:
    """The filter pass `number` has in today's plan, as the workflow holds it."""
    plan = await read_plan(client, ref)
    return next(p.definition.filter for p in plan.passes if p.number == number)


async def follow(
    client: Client,
    handle: WorkflowHandle,
    engine: AsyncEngine,
    ref: SubCampaignRef,
    console: Console,
    *,
    started: float,
    limit_seconds: float = RUN_TIMEOUT_SECONDS,
) -> tuple[SubCampaignStatus, str]:
    """Show live progress until the workflow ends, amending the SMS pass on the way."""
    result = asyncio.ensure_future(handle.result())
    amendment = "no SMS pass was waiting to be amended"
    amended = False
    deadline = time.monotonic() + limit_seconds

    def view(status: SubCampaignStatus) -> Group:
        clock = Text(f"elapsed {time.monotonic() - started:.1f}s", style="dim")
        return Group(render_status(status), clock)

    status = await read_status(client, engine, ref)
    try:
        with Live(view(status), console=console, transient=True, auto_refresh=False) as live:
            while True:
                finished = result.done()
                status = await read_status(client, engine, ref)
                live.update(view(status), refresh=True)
                number = amendment_due(status)
                if not amended and number is not None:
                    amended = True
                    amendment = await amend_sms_pass(
                        client, ref, number, await current_filter(client, ref, number)
                    )
                    live.console.print(f"[bold]{escape(amendment)}[/bold]")
                if finished:
                    result.result()  # a failed workflow raises here
                    return status, amendment
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"the demo's sub-campaign did not finish within {limit_seconds:.0f}s; "
                        f"see it with `csm status {ref.workflow_id}`"
                    )
                await asyncio.wait({result}, timeout=0.5)
    finally:
        if not result.done():
            result.cancel()


async def run_demo(
    settings: Settings,
    *,
    contacts: int = 2000,
    seed: int = 1,
    console: Console | None = None,
    strategy: Path = DEMO_STRATEGY,
) -> DemoResult:
    """The whole demo: stack, list, campaign, worker, live run with an amendment, summary."""
    from csm.control import connect, start_sub_campaign
    from csm.database import engine_for
    from worker import build_worker

    console = console or Console()
    started = time.monotonic()
    # activities/planning.py's `select(distinct(...))` warns on every plan; not news here.
    warnings.filterwarnings("ignore", message="Column-expression-level unary distinct")
    definition = load_demo_strategy(strategy)

    def step(text: str) -> None:
        console.print(f"[bold cyan]›[/bold cyan] {text}")

    step("embedded stack: Temporal, PostgreSQL, SMTP sink, local carrier, webhook receiver")
    mail_dir = await start_stack(settings, lambda line: console.print(f"  [dim]{line}[/dim]"))
    step(providers_line(settings))
    client = await connect(settings)
    names = demo_names()
    async with engine_for(settings.effective_database_url) as engine:
        step(f"list {names.list_name!r}: {contacts} synthetic contacts (seed {seed})")
        step(f"campaign {names.campaign!r} from {strategy.name}")
        step("its contact policy: Reg F 7-in-7 and conversation pause, at any hour for the demo")
        await prepare(engine, names, contacts=contacts, seed=seed, strategy=definition)
        emails_before = count_messages(mail_dir)
        async with build_worker(client, settings, engine=engine):
            launched = await start_sub_campaign(
                client,
                engine,
                campaign=names.campaign,
                list_name=names.list_name,
                task_queue=settings.task_queue,
            )
            ref = launched.sub_campaign
            url = workflow_url(settings, ref.workflow_id)
            console.print(
                f"[bold cyan]›[/bold cyan] sub-campaign started: workflow {ref.workflow_id}",
                soft_wrap=True,
            )
            console.print(f"  Temporal UI: {url}", soft_wrap=True)
            status, amendment = await follow(
                client, launched.handle, engine, ref, console, started=started
            )
    elapsed = time.monotonic() - started
    result = DemoResult(
        names=names,
        workflow_id=ref.workflow_id,
        status=status,
        amendment=amendment,
        mail_dir=mail_dir,
        emails=count_messages(mail_dir) - emails_before,
        elapsed=elapsed,
    )
    print_summary(result, settings, console)
    return result


def providers_line(settings: Settings) -> str:
    """Where the demo's calls and texts go: the Twilio adapter to the local carrier, unless
    the settings pick the simulator."""
    from csm.providers.build import chosen

    voice = chosen(settings, settings.voice_provider)
    sms = chosen(settings, settings.sms_provider)
    if voice == sms == "twilio":
        return f"voice and SMS: the Twilio adapter to the carrier at {settings.twilio_base_url}"
    return f"voice: {voice}, SMS: {sms}"


def print_summary(result: DemoResult, settings: Settings, console: Console) -> None:
    """Per-pass results, totals, the amendment, the UI link, the e-mails, the time taken."""
    status = result.status
    console.print(status_table(status, title=f"per-pass results · {status.state}"))
    console.print(results_table(status))
    console.print(f"amendment: {escape(result.amendment)}")
    console.print(f"Temporal UI: {workflow_url(settings, result.workflow_id)}", soft_wrap=True)
    console.print(
        f"e-mails: {result.emails} landed in {result.mail_dir} (one .eml file each)",
        soft_wrap=True,
    )
    console.print(
        f"finished in {result.elapsed:.1f}s · look again with `csm status {result.workflow_id}` "
        "(needs `csm worker`) · stop the stack with `csm dev down`",
        soft_wrap=True,
    )
