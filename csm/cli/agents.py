"""`csm agents`: the agent groups that take dialer calls and live transfers.

A thin layer over csm.agents: parse the options, call one function, print.
The agents here are simulated (seats in PostgreSQL, talk and wrap-up times
drawn around the group's means); a real ACD link implements
csm.agents.AgentDesk instead. docs/agents.md tells the whole story.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from csm.cli.campaigns import JSON_OPTION
from csm.cli.database import with_database
from csm.errors import CsmError
from csm.strategy.durations import DurationError, format_duration, parse_duration

if TYPE_CHECKING:
    from csm.agents import GroupState

agents_app = typer.Typer(
    help=(
        "Agent groups: the people who take dialer calls and live answers of AVM passes"
        " (docs/agents.md). Here the agents are simulated: seats in the database whose talk"
        " and wrap-up times are drawn around the group's means. A real ACD link implements"
        " csm.agents.AgentDesk instead, and these commands then only size the simulation."
    ),
    no_args_is_help=True,
)
console = Console()


def _seconds(option: str, text: str | None) -> float | None:
    """A duration option ("3m", "30s", "1h30m") in seconds; bad text → one clear error.

    DurationError is the parser's own refusal; a ValueError or OverflowError from
    anywhere under it (a number too big for `timedelta`, say) is still bad text, and
    becomes the same one line instead of a traceback.
    """
    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except (DurationError, ValueError, OverflowError) as err:
        raise CsmError(f"{option}: {err}") from None


def _time(seconds: float) -> str:
    """A mean time as a duration ("3m", "30s"); whole seconds, "0s" for none."""
    return format_duration(timedelta(seconds=round(seconds)))


def _groups_table(states: list[GroupState], title: str) -> Table:
    table = Table(
        "group",
        "agents",
        "available",
        "on call",
        "wrap-up",
        "mean talk",
        "mean wrap-up",
        title=title,
    )
    for state in states:
        table.add_row(
            state.name,
            str(state.agents),
            str(state.available),
            str(state.on_call),
            str(state.wrap_up),
            _time(state.talk_seconds),
            _time(state.wrap_seconds),
        )
    return table


@agents_app.command("show")
def show_command(as_json: bool = JSON_OPTION) -> None:
    """Every agent group now: agents available, on a call and in wrap-up.

    One row per group: its agents, how many are available, on a call and in
    wrap-up at this moment, and the mean talk and wrap-up times of its
    (simulated) calls. `--json` prints a list of {"group", "agents", "available",
    "on_call", "wrap_up", "talk_seconds", "wrap_seconds"}.
    """
    from csm.agents import agent_groups

    states = with_database(agent_groups)
    if as_json:
        print(json.dumps([state.as_json() for state in states], indent=2))
        return
    if not states:
        print(
            "no agent groups yet: create one with `csm agents set --group default --count N`"
            " (dialer passes without `agents` use the group 'default')"
        )
        return
    console.print(_groups_table(states, "agent groups"))


@agents_app.command("set")
def set_command(
    group: str = typer.Option(
        "default",
        "--group",
        "-g",
        help="the group's name, as a pass's `agents` key names it; dialer passes without"
        " `agents` use 'default'",
    ),
    count: int = typer.Option(
        ...,
        "--count",
        "-n",
        help="how many agents (seats 1..N, 0 to 10000): more adds seats, fewer removes the"
        " highest ones",
    ),
    talk: str | None = typer.Option(
        None,
        "--talk",
        help="mean talk time of a simulated call, as a duration like '3m' or '90s' (0s to 24h;"
        " a new group: 3m; otherwise unchanged)",
    ),
    wrap: str | None = typer.Option(
        None,
        "--wrap",
        help="mean wrap-up time after a call, before the agent is available again, like '30s'"
        " (0s to 24h; a new group: 30s; otherwise unchanged)",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="where a real carrier bridges the group's live answers (TwiML <Dial>): a number"
        " in E.164 (+15551234567) or a SIP URI (sip:collections@pbx.example.com); unset: kept,"
        " or CSM_TWILIO_AGENT_ADDRESS (docs/providers.md)",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an agent group or resize it, and set its mean talk and wrap-up times.

    The agents are simulated: each call takes an agent for a talk time and then a
    wrap-up time, drawn at random (repeatably) around these means. Running passes
    see a new size at once, and new mean times within 30 seconds. With a
    real contact centre, a link to its ACD implements csm.agents.AgentDesk and
    these commands only size the simulation.
    """
    from csm.agents import set_agents

    talk_seconds = _seconds("--talk", talk)
    wrap_seconds = _seconds("--wrap", wrap)
    state = with_database(
        lambda engine: set_agents(
            engine,
            group,
            count,
            talk_seconds=talk_seconds,
            wrap_seconds=wrap_seconds,
            address=address,
        )
    )
    if as_json:
        print(json.dumps(state.as_json(), indent=2))
        return
    noun = "agent" if state.agents == 1 else "agents"
    print(
        f"agent group {state.name!r}: {state.agents} {noun}, mean talk {_time(state.talk_seconds)},"
        f" mean wrap-up {_time(state.wrap_seconds)}"
        + (f", live answers bridged to {state.address}" if state.address else "")
    )
    console.print(_groups_table([state], f"agent group {state.name!r}"))
