"""Register a sub-campaign and start its workflow from a script, then read its plan.

    python starter/start_subcampaign.py --campaign reminders --list march
    python starter/start_subcampaign.py --campaign reminders --list march --wait

Needs the stack (`csm dev up`) and a worker (`csm worker`) on CSM_TASK_QUEUE.
`start_sub_campaign` (csm.control) writes the sub-campaign row and starts the
`SubCampaign` workflow with its typed input (`SubCampaignInput`: ids and names only,
never personal data); the same call again finds the running workflow instead of a
second one.
"""

from __future__ import annotations

import argparse
import asyncio

from csm.control import connect, read_plan, start_sub_campaign
from csm.database import engine_for
from csm.exit import run_and_exit
from csm.settings import load_settings
from csm.strategy.loader import load_strategy_file
from csm.subcampaign_types import SubCampaignSummary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", required=True, help="the campaign to run")
    parser.add_argument("--list", required=True, dest="list_name", help="the contact list")
    parser.add_argument("--name", help="the sub-campaign's name (default: the list's name)")
    parser.add_argument("--strategy", help="a strategy file for this sub-campaign only")
    parser.add_argument("--wait", action="store_true", help="wait for the day's work to end")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    client = await connect(settings)
    strategy = load_strategy_file(args.strategy)[0] if args.strategy else None
    async with engine_for(settings.effective_database_url) as engine:
        launched = await start_sub_campaign(
            client,
            engine,
            campaign=args.campaign,
            list_name=args.list_name,
            task_queue=settings.task_queue,
            name=args.name,
            strategy=strategy,
        )
    handle = launched.handle
    print(f"workflow {handle.id} (sub-campaign {launched.sub_campaign.name!r})")
    if args.wait:
        summary: SubCampaignSummary = await handle.result()
        print(f"{summary.state} after {summary.days_run} day(s): {summary.totals}")
    # The `plan` query answers with a typed PlanView: passes, status, amendments.
    plan = await read_plan(client, launched.sub_campaign)
    print(f"state {plan.state}, day {plan.day}")
    for planned in plan.passes:
        print(f"  pass {planned.number} {planned.definition.name!r}: {planned.status.value}")


if __name__ == "__main__":
    arguments = parse_args()
    run_and_exit(lambda: asyncio.run(main(arguments)))
