"""`csm suppress`: accounts and devices not to contact, in one campaign or in all."""

from __future__ import annotations

import typer

from csm.cli.campaigns import with_database

suppress_app = typer.Typer(
    help="Suppression lists: do-not-contact accounts and devices, checked before each batch.",
    no_args_is_help=True,
)


@suppress_app.command("add")
def add_command(
    account: str | None = typer.Option(None, "--account", help="an account key"),
    device: str | None = typer.Option(
        None, "--device", help="a phone number in E.164 (+14155550100) or an e-mail address"
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="only this campaign (default: every campaign)"
    ),
    reason: str = typer.Option("do_not_contact", "--reason", help="why, e.g. opt_out"),
) -> None:
    """Suppress one account or one device; passes skip it from their next batch on."""
    from csm.suppressions import add_suppression

    number = with_database(
        lambda engine: add_suppression(
            engine, account=account, device=device, campaign=campaign, reason=reason
        )
    )
    scope = f"campaign {campaign!r}" if campaign else "every campaign"
    typer.echo(f"suppression {number} added for {scope}")


@suppress_app.command("remove")
def remove_command(suppression_id: int = typer.Argument(..., help="the suppression's id")) -> None:
    """Lift a suppression."""
    from csm.suppressions import remove_suppression

    with_database(lambda engine: remove_suppression(engine, suppression_id))
    typer.echo(f"suppression {suppression_id} removed")
