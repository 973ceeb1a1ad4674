"""`csm contacts`: what csm did to one account, across campaigns (an operator's tool).

Shows contact data (phone numbers, e-mail addresses): for the people who answer
an account's questions, not for logs.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from csm.cli.campaigns import JSON_OPTION
from csm.cli.database import with_database

if TYPE_CHECKING:
    from csm.contact_history import ContactHistory

contacts_app = typer.Typer(
    help="Contacts: one account's attempts, caps, final outcomes and suppressions.",
    no_args_is_help=True,
)
console = Console()


@contacts_app.command("history")
def history_command(
    account: str = typer.Argument(..., help="the account key"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every attempt to an account across campaigns, oldest first, and the caps, pause,
    final outcomes and suppressions that hold it now."""
    from csm.contact_history import contact_history

    history = with_database(lambda engine: contact_history(engine, account))
    if as_json:
        print(json.dumps(history.as_json(), indent=2))
        return
    print_history(history)


def print_history(history: ContactHistory) -> None:
    from csm.ledger import try_shown

    zone = ZoneInfo(history.timezone or "UTC")

    def local(at: datetime) -> str:
        return f"{at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"

    state = f" · state {history.state}" if history.state else ""
    print(
        f"account {history.account} (contact {history.contact_id})"
        f" · {history.timezone or 'time zone unknown, times in UTC'}{state}"
        f" · now {local(history.now)}"
    )
    devices = ", ".join(f"{d.position}. {d.kind} {d.value}" for d in history.devices)
    print(f"devices: {devices or 'none'}")

    if history.attempts:
        table = Table(
            "time",
            "campaign",
            "sub-campaign",
            "day",
            "pass",
            "try",
            "channel",
            "device",
            "result",
            "skip reason",
            title=f"attempts, oldest first ({len(history.attempts)}; contact's clock)",
        )
        for a in history.attempts:
            device = f"{a.device_kind} {a.device_value}" if a.device_value else "-"
            if a.device_id and not a.device_value:
                device = f"device {a.device_id} (removed)"
            table.add_row(
                local(a.attempted_at),
                escape(a.campaign or f"#{a.campaign_id}"),
                escape(a.sub_campaign or f"#{a.sub_campaign_id}"),
                a.day.isoformat(),
                str(a.pass_number),
                str(try_shown(a.try_number)),
                a.channel,
                escape(device),
                a.result,
                a.skip_reason or "",
            )
        console.print(table)
    else:
        print("attempts: none")

    caps = Table("policy", "cap", "usage now", "", title="caps that applied")
    pauses: list[str] = []
    for usage in history.policies:
        scope = f"campaign {usage.campaign}" if usage.campaign else "global"
        for cap in usage.caps:
            status = (
                f"not for state {history.state or '(none)'}"
                if not cap.holds_contact
                else "at cap: next attempt skipped"
                if cap.at_cap
                else ""
            )
            caps.add_row(escape(scope), cap.cap.name, escape(cap.words()), status)
        if usage.pause is not None:
            pause = usage.pause
            now = (
                f"holds until {local(pause.until)}"
                if pause.holds and pause.until
                else "does not hold now"
            )
            pauses.append(
                f"  {scope}: {pause.days} days after {', '.join(pause.results)}"
                f" on {', '.join(pause.channels)}: {now}"
            )
    if caps.row_count:
        console.print(caps)
    else:
        print("caps that applied: none")
    print("conversation pause:" + ("\n" + "\n".join(pauses) if pauses else " not in force"))

    if history.final_outcomes:
        finals = Table("campaign", "group", "scope", "reached", title="final outcomes")
        for row in history.final_outcomes:
            finals.add_row(escape(row.campaign or "-"), row.group, row.scope, local(row.reached_at))
        console.print(finals)
    else:
        print("final outcomes: none")

    if history.suppressions:
        table = Table("id", "kind", "value", "campaign", "reason", "since", title="suppressions")
        for s in history.suppressions:
            table.add_row(
                str(s.id),
                s.kind,
                escape(s.value),
                escape(s.campaign or "all campaigns"),
                s.reason,
                local(s.created_at),
            )
        console.print(table)
    else:
        print("suppressions: none")
