"""Amend today's plan of a running sub-campaign by update, and print the plan it returns.

    python starter/amend.py subcampaign-reminders-march --skip-pass 3
    python starter/amend.py march --set-filter "text not reached" "attributes.balance >= 100" \
        --until 14:00 --reason "texts for large balances only until 2 pm"

Needs the stack (`csm dev up`) and a worker (`csm worker`). The `amend` update
is validated by the workflow before it applies: a bad amendment (a pass that
has started, an unknown field in a filter) comes back as an error with the
reason, and nothing changes. Operations are typed (`SkipPass`, `SetFilter`...,
see csm/amendments.py); `until` is a UTC instant, so a local time is converted
here, where the time-zone database is.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from csm.amendments import Amendment, SetFilter, SkipPass
from csm.campaigns import get_campaign
from csm.control import ControlError, Refused, amend, connect, until_instant
from csm.database import engine_for
from csm.errors import CsmError
from csm.exit import run_and_exit
from csm.plan import PlanView
from csm.settings import load_settings
from csm.subcampaigns import find_sub_campaign


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sub_campaign", help="workflow id, or the sub-campaign's unique name")
    parser.add_argument("--skip-pass", action="append", default=[], metavar="PASS")
    parser.add_argument(
        "--set-filter", action="append", nargs=2, default=[], metavar=("PASS", "EXPR")
    )
    parser.add_argument("--until", metavar="HH:MM", help="end it at this time today (campaign)")
    parser.add_argument("--reason", default="")
    parser.add_argument("--author", default=os.environ.get("USER", "unknown"))
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    if not (args.skip_pass or args.set_filter):
        raise CsmError("nothing to amend: give --skip-pass or --set-filter")
    settings = load_settings()
    async with engine_for(settings.effective_database_url) as engine:
        ref = await find_sub_campaign(engine, args.sub_campaign)
        timezone = (await get_campaign(engine, ref.campaign)).timezone
    amendment = Amendment(
        operations=[
            *(SetFilter(target=target, filter=text) for target, text in args.set_filter),
            *(SkipPass(target=target) for target in args.skip_pass),
        ],
        until=until_instant(args.until, timezone) if args.until else None,
        author=args.author,
        reason=args.reason,
    )
    client = await connect(settings)
    try:
        plan: PlanView = await amend(client, ref, amendment)
    except Refused as err:  # the workflow's validator said no (or it has ended), and why
        raise CsmError(f"amendment refused by {ref.workflow_id}: {err.reason}") from None
    except ControlError as err:  # no such workflow, no worker, Temporal unreachable
        raise CsmError(f"cannot amend {ref.workflow_id}: {err.reason}") from None
    print(f"{plan.sub_campaign} · {plan.day} · {plan.state}")
    for planned in plan.passes:
        flag = " (amended)" if planned.amended else ""
        print(
            f"  pass {planned.number} {planned.definition.name!r}: {planned.status.value}{flag}"
            f"  filter: {planned.definition.filter or '(everyone)'}"
        )


if __name__ == "__main__":
    arguments = parse_args()
    run_and_exit(lambda: asyncio.run(main(arguments)))
