"""`csm suppress`: accounts, phone numbers and e-mail addresses not to contact.

A thin layer over csm.suppressions (docs/suppression.md): options become keyword
arguments, results become a line, a table or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from csm.cli.database import with_database
from csm.errors import CsmError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from csm.suppressions import ImportReport
    from csm.suppressions.targets import Named

suppress_app = typer.Typer(
    help=(
        "Suppression lists: accounts, phone numbers and e-mail addresses not to contact, "
        "in one campaign or in every campaign. Passes check them before each batch."
    ),
    no_args_is_help=True,
)
console = Console()

ACCOUNT_OPTION = typer.Option(
    None, "--account", metavar="KEY", help="an account key, as in list files (need not exist yet)"
)
PHONE_OPTION = typer.Option(
    None,
    "--phone",
    metavar="NUMBER",
    help="a phone number: +14155550100, (415) 555-0100, ... (no +country: CSM_DEFAULT_REGION)",
)
EMAIL_OPTION = typer.Option(None, "--email", metavar="ADDRESS", help="an e-mail address")
JSON_OPTION = typer.Option(False, "--json", help="print JSON instead of text")
#: The most rows `csm suppress list` prints (a bound, so a huge number is a usage error).
MAX_LIMIT = 1_000_000


def _scope(campaign: str | None) -> str:
    return f"campaign {campaign!r}" if campaign else "every campaign"


def import_summary(report: ImportReport) -> list[str]:
    """A few readable lines on what `csm suppress import` did, by kind."""
    from csm.suppressions import SuppressionKind

    lines = [
        f"{report.file}: {report.rows} rows, {report.total_added} suppressions added for "
        f"{_scope(report.campaign)}, {sum(report.already_present.values())} already present"
    ]
    for kind in SuppressionKind:
        added, present = report.added.get(kind, 0), report.already_present.get(kind, 0)
        if added or present:
            lines.append(f"  {kind}: {added} added, {present} already present")
    if report.duplicates_in_file:
        lines.append(f"  {report.duplicates_in_file} targets named more than once in the file")
    if report.ignored_columns:
        lines.append("  ignored columns: " + ", ".join(report.ignored_columns))
    return lines


@suppress_app.command("add")
def add_command(
    account: str | None = ACCOUNT_OPTION,
    phone: str | None = PHONE_OPTION,
    email: str | None = EMAIL_OPTION,
    campaign: str | None = typer.Option(
        None, "--campaign", help="only in this campaign (default: every campaign)"
    ),
    reason: str = typer.Option(
        "do_not_contact", "--reason", help="why, at most 32 characters (e.g. opt_out, legal_hold)"
    ),
) -> None:
    """Suppress one account, phone number or e-mail address; passes skip it from their next batch.

    Give exactly one of --account, --phone, --email. Adding a suppression that
    already exists changes nothing and prints its id.
    """
    from csm.settings import load_settings
    from csm.suppressions import ensure_suppression

    region = load_settings().default_region
    added = with_database(
        lambda engine: ensure_suppression(
            engine,
            account=account,
            phone=phone,
            email=email,
            campaign=campaign,
            reason=reason,
            default_region=region,
        )
    )
    what = f"{added.kind} {added.value}"
    if added.created:
        print(f"suppression {added.id}: {what} suppressed in {_scope(campaign)} ({reason})")
    else:
        print(f"suppression {added.id}: {what} was already suppressed in {_scope(campaign)}")


@suppress_app.command("remove")
def remove_command(
    suppression_id: int | None = typer.Argument(
        None,
        metavar="ID",
        help="the suppression's id (see `csm suppress list`)",
        show_default=False,
    ),
    account: str | None = ACCOUNT_OPTION,
    phone: str | None = PHONE_OPTION,
    email: str | None = EMAIL_OPTION,
    campaign: str | None = typer.Option(
        None, "--campaign", help="with a target: lift it in this campaign (default: the global one)"
    ),
    every_scope: bool = typer.Option(
        False, "--every-scope", help="with a target: lift it globally and in every campaign"
    ),
) -> None:
    """Lift a suppression: by its ID, or by target (--account, --phone or --email).

    A target's global suppression and its per-campaign ones are separate:
    without --campaign only the global one is lifted. Nothing to lift is an error.
    """
    from csm.suppressions import (
        SuppressionRow,
        Target,
        list_suppressions,
        remove_suppression,
        remove_target,
    )

    targets = [t for t in (account, phone, email) if t is not None]
    if suppression_id is not None:
        if targets or campaign or every_scope:
            raise CsmError(
                "give a suppression id or a target (--account/--phone/--email), not both"
            )
        row = with_database(lambda engine: remove_suppression(engine, suppression_id))
        print(f"suppression {row.id} removed: {row.kind} {row.value} in {_scope(row.campaign)}")
        return
    if not targets:
        raise CsmError("give a suppression id, or one of --account, --phone, --email")
    from csm.settings import load_settings

    region = load_settings().default_region
    named: Named = {"account": account, "phone": phone, "email": email}

    async def run(engine: AsyncEngine) -> tuple[int, list[SuppressionRow]]:
        removed = await remove_target(
            engine, campaign=campaign, every_scope=every_scope, default_region=region, **named
        )
        if removed:
            return removed, []
        target = Target.one_of(named, region)  # where else it is, to say so
        page = await list_suppressions(engine, kind=target.kind, value=target.value, limit=None)
        return 0, page.rows

    removed, elsewhere = with_database(run)
    if removed:
        print(f"{removed} suppression{'s' if removed != 1 else ''} removed")
        return
    where = "any scope" if every_scope else _scope(campaign)
    message = f"nothing removed: that target is not suppressed in {where}"
    if elsewhere:
        scopes = ", ".join(_scope(row.campaign) for row in elsewhere)
        message += f" (it is in {scopes}: use --campaign or --every-scope)"
    raise CsmError(message)


@suppress_app.command("import")
def import_command(
    file: Path = typer.Argument(
        ..., help="a CSV file with a header naming any of account, phone, email (and reason)"
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="only in this campaign (default: every campaign)"
    ),
    reason: str = typer.Option(
        "do_not_contact", "--reason", help="the reason of rows without a reason cell"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Suppress every target of a CSV file, in one transaction.

    Each row fills one or more of the columns account, phone, email; an optional
    reason column overrides --reason. Other columns are ignored. One bad row
    (bad phone or e-mail, nothing filled, formula-like cell) rejects the whole
    file: every problem is listed as file:line: column: reason, and nothing is
    written. Targets already suppressed are counted and left as they are.
    """
    from csm.settings import load_settings
    from csm.suppressions import import_suppressions

    region = load_settings().default_region
    report = with_database(
        lambda engine: import_suppressions(
            engine, file, campaign=campaign, reason=reason, default_region=region
        )
    )
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(import_summary(report)))


@suppress_app.command("list")
def list_command(
    campaign: str | None = typer.Option(
        None, "--campaign", help="only suppressions scoped to this campaign"
    ),
    only_global: bool = typer.Option(
        False, "--global", help="only suppressions that hold in every campaign"
    ),
    kind: str | None = typer.Option(None, "--kind", help="account, phone or email"),
    reason: str | None = typer.Option(
        None, "--reason", help="only this reason (e.g. stop_reply, hard_bounce)"
    ),
    limit: int = typer.Option(
        100, "--limit", min=1, max=MAX_LIMIT, help="show at most this many, newest first"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The newest suppressions, with their scope, and how many match in all."""
    from csm.suppressions import list_suppressions

    page = with_database(
        lambda engine: list_suppressions(
            engine,
            campaign=campaign,
            only_global=only_global,
            kind=kind,
            reason=reason,
            limit=limit,
        )
    )
    if as_json:
        shown = {"total": page.total, "suppressions": [row.as_dict() for row in page.rows]}
        print(json.dumps(shown, indent=2))
        return
    table = Table("id", "scope", "kind", "value", "reason", "added", title="suppressions")
    for row in page.rows:
        table.add_row(
            str(row.id),
            row.campaign or "(every campaign)",
            row.kind,
            row.value,
            row.reason,
            row.created_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    console.print(table)
    print(f"{len(page.rows)} of {page.total} shown")
