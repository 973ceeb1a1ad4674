"""`csm inbound`: simulate messages a provider's inbound webhook would deliver.

`csm inbound sms FROM TEXT` does what an SMS provider's inbound webhook does in
production: it hands the reply to `csm.suppressions.receive_sms`, so a STOP
reply suppresses the number in every campaign (docs/suppression.md).
"""

from __future__ import annotations

import json

import typer

from csm.cli.database import with_database

inbound_app = typer.Typer(
    help="Simulate inbound messages (what a provider's webhook delivers): SMS replies.",
    no_args_is_help=True,
)


@inbound_app.command("sms")
def sms_command(
    from_number: str = typer.Argument(
        ..., metavar="FROM", help="the sender's phone number, e.g. +14155550100"
    ),
    text: str = typer.Argument(..., metavar="TEXT", help="the message, e.g. STOP"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of text"),
) -> None:
    """Receive an SMS reply: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opts the number out.

    The keyword must be the whole message (any case, surrounding spaces and
    punctuation ignored); the number is then suppressed in every campaign with
    reason stop_reply. Any other message changes nothing.
    """
    from csm.settings import load_settings
    from csm.suppressions import normalise_target, receive_sms

    region = load_settings().default_region
    phone = normalise_target("phone", from_number, default_region=region)
    opted_out = with_database(
        lambda engine: receive_sms(engine, from_number, text, default_region=region)
    )
    if as_json:
        print(json.dumps({"from": phone, "opted_out": opted_out}))
    elif opted_out:
        print(f"{phone} opted out: suppressed in every campaign (stop_reply)")
    else:
        print(f"{phone}: not an opt-out keyword, nothing changed")
