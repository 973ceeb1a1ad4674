"""A dialer pass over one list at several agent counts: abandon rate and agent utilisation.

Runs the real pass activity (no Temporal server needed) on the seeded simulator
with ringing calls, against simulated agents in PostgreSQL (embedded, or
DATABASE_URL). Prints, per agent count and pacing mode, the live answers, the
abandoned calls and their rate, the agents' utilisation and the pass's duration.

    python bench/dialer_agents.py --contacts 1000 --agents 2 5 10
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.testing import ActivityEnvironment

from activities.passes import PassActivities, PassInput
from csm.agents import SimulatedAgentDesk, set_agents
from csm.campaigns import create_campaign
from csm.channels import Channels
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.compliance.store import set_policy
from csm.database import create_engine
from csm.results import agent_utilisation
from csm.schedule import campaign_day
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.synthetic import create_synthetic_list
from csm.testing.servers import fresh_database
from csm.vocabulary import Channel

STRATEGY = """
timezone = "America/New_York"
[[passes]]
name = "agents"
channel = "dialer"
agents = "{group}"
pacing = {{ mode = "{mode}", abandon_limit = {limit}, hold = "{hold}s", concurrency = 50 }}
"""


async def run(args: argparse.Namespace) -> None:
    async with fresh_database(os.environ.get("DATABASE_URL")) as url:
        engine = create_engine(url)
        await set_policy(engine, '[hours]\nvoice = "any"\n')
        await create_synthetic_list(engine, "bench", contacts=args.contacts, seed=7)
        carrier = SimulatedCarrier(SimulatorConfig(seed=7, latency_seconds=args.ring))
        channels = Channels({Channel.DIALER: carrier})
        print(
            f"{args.contacts:,} contacts, ringing {args.ring * 1000:.0f} ms, talk {args.talk}s,"
            f" wrap-up {args.wrap}s (means), hold {args.hold}s, abandon limit {args.limit:.0%}",
            flush=True,
        )
        for mode in args.modes:
            for agents in args.agents:
                name = f"{mode}-{agents}"
                await set_agents(
                    engine, name, agents, talk_seconds=args.talk, wrap_seconds=args.wrap
                )
                text = STRATEGY.format(group=name, mode=mode, limit=args.limit, hold=args.hold)
                strategy = load_strategy(text)
                await create_campaign(engine, name, strategy, text)
                sub = await register_sub_campaign(engine, campaign=name, list_name="bench")
                now = datetime.now(UTC)
                params = PassInput(
                    sub_campaign_id=sub.id,
                    campaign_id=sub.campaign_id,
                    list_id=sub.list_id,
                    day=campaign_day(now, strategy.timezone),
                    pass_number=1,
                    definition=strategy.passes[0],
                    response_groups={},
                    campaign_timezone=strategy.timezone,
                )
                env = ActivityEnvironment()
                env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=now)
                activities = PassActivities(engine, channels, desk=SimulatedAgentDesk(engine))
                began = time.perf_counter()
                counts = await env.run(activities.run_pass, params)
                seconds = time.perf_counter() - began
                connected = counts.results.get("agent_connected", 0)
                abandoned = counts.results.get("abandoned", 0)
                live = connected + abandoned
                used = await agent_utilisation(engine, sub.id, params.day, 1, name)
                print(
                    f"{mode:>11} {agents:>3} agents: {live:>4} live answers, {abandoned:>3}"
                    f" abandoned = {abandoned / live if live else 0:5.1%},"
                    f" utilisation {used or 0:5.1%}, {seconds:6.1f} s",
                    flush=True,
                )
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--modes", nargs="+", default=["progressive", "predictive"])
    parser.add_argument("--ring", type=float, default=0.5, help="seconds a call rings")
    parser.add_argument("--talk", type=float, default=2.0, help="mean talk time, seconds")
    parser.add_argument("--wrap", type=float, default=0.5, help="mean wrap-up, seconds")
    parser.add_argument("--hold", type=int, default=2, help="seconds a person waits, at most")
    parser.add_argument("--limit", type=float, default=0.03, help="abandon limit")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
