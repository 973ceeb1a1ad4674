"""`csm policy`: the contact policy in force, new versions of it, and its history.

A thin layer over csm.compliance.store: read the file (or a preset), store a
version, print. docs/policy.md documents the file format.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from csm.cli.campaigns import JSON_OPTION
from csm.cli.database import with_database
from csm.errors import CsmError
from csm.files import read_small_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from csm.compliance.policy import Cap, ContactPolicy, ConversationPause
    from csm.compliance.store import PolicyVersion

policy_app = typer.Typer(
    help="The contact policy: calling hours, caps and pauses across campaigns (docs/policy.md).",
    no_args_is_help=True,
)
console = Console()

CAMPAIGN_OPTION = typer.Option(
    None, "--campaign", "-c", help="a campaign's override (default: the global policy)"
)
SECTIONS = ("hours", "states", "holidays", "caps", "conversation_pause")


@dataclass(frozen=True)
class PolicyInForce:
    """The policy a scope runs under now, and the stored versions it is made of."""

    campaign: str | None
    policy: ContactPolicy
    global_version: PolicyVersion | None  # None: the built-in default
    campaign_version: PolicyVersion | None  # the campaign's override, if it has one

    @property
    def overridden(self) -> list[str]:
        """The sections the campaign's override replaces, in the file's order."""
        if self.campaign_version is None:
            return []
        return [name for name in SECTIONS if name in self.campaign_version.sections]

    def origin(self) -> str:
        """ "campaign 'x' version 2 (caps) over global version 5" — where the policy comes from."""
        base = (
            "built-in default"
            if self.global_version is None
            else f"global version {self.global_version.version}"
        )
        if self.campaign_version is None:
            if self.campaign is None:
                return base
            return f"{base} (campaign {self.campaign!r} has no override)"
        replaced = ", ".join(self.overridden) or "no sections"
        return (
            f"campaign {self.campaign!r} version {self.campaign_version.version}"
            f" (replaces {replaced}) over {base}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "origin": self.origin(),
            "global_version": _version_json(self.global_version),
            "campaign_version": _version_json(self.campaign_version),
            "overridden_sections": self.overridden,
            "policy": self.policy.model_dump(mode="json"),
        }


def _version_json(version: PolicyVersion | None, *, source: bool = False) -> dict | None:
    if version is None:
        return None
    shown: dict[str, Any] = {
        "campaign": version.campaign,
        "version": version.version,
        "author": version.author,
        "created_at": version.created_at.isoformat(),
        "sections": sorted(version.sections),
    }
    if source:
        shown["source"] = version.source
        shown["definition"] = version.sections
    return shown


async def _check_campaign(engine: AsyncEngine, campaign: str | None) -> None:
    """An unknown campaign is one clear error, with the closest name as a hint."""
    if campaign is not None:
        from csm.campaigns import get_campaign

        await get_campaign(engine, campaign)


async def policy_in_force(engine: AsyncEngine, campaign: str | None = None) -> PolicyInForce:
    from csm.compliance.store import effective_policy, policy_history

    await _check_campaign(engine, campaign)
    global_versions = await policy_history(engine, None)
    campaign_versions = await policy_history(engine, campaign) if campaign else []
    return PolicyInForce(
        campaign=campaign,
        policy=await effective_policy(engine, campaign),
        global_version=global_versions[0] if global_versions else None,
        campaign_version=campaign_versions[0] if campaign_versions else None,
    )


# --- words for a policy ---------------------------------------------------------------------


def period_words(cap: Cap) -> str:
    """ "in 7d", "today" (the contact's calendar day)."""
    return "today" if cap.period == "day" else f"in {cap.period}"


def cap_words(cap: Cap) -> str:
    """ "at most 7 per account in 7d on voice, dialer (FL only)"."""
    where = f" ({', '.join(cap.states)} only)" if cap.states else ""
    period = "per day" if cap.period == "day" else f"in {cap.period}"
    channels = ", ".join(channel.value for channel in cap.channels)
    return f"at most {cap.max} per {cap.per} {period} on {channels}{where}"


def pause_words(pause: ConversationPause | None) -> str:
    if pause is None:
        return "none"
    channels = ", ".join(channel.value for channel in pause.channels)
    return (
        f"no {channels} attempt for {pause.days} day{'s' if pause.days != 1 else ''}"
        f" after {', '.join(pause.results)}"
    )


def _hours_rows(policy: ContactPolicy) -> list[tuple[str, str]]:
    return [
        ("voice, dialer", policy.hours.voice or "any"),
        ("sms", policy.hours.sms or "any"),
        ("email", policy.hours.email or "any"),
    ]


def summary(policy: ContactPolicy) -> str:
    """One line: hours per channel, caps by name, the pause."""
    hours = ", ".join(f"{channel} {text}" for channel, text in _hours_rows(policy))
    parts = [f"hours {hours}"]
    if policy.states:
        parts.append(f"state hours for {', '.join(sorted(policy.states))}")
    if policy.holidays:
        parts.append(f"{len(policy.holidays)} holiday{'s' if len(policy.holidays) != 1 else ''}")
    caps = ", ".join(cap.name for cap in policy.caps)
    parts.append(f"caps: {caps}" if caps else "no caps")
    parts.append(f"conversation pause: {pause_words(policy.conversation_pause)}")
    return "; ".join(parts)


def print_policy(shown: PolicyInForce) -> None:
    policy = shown.policy
    scope = f"campaign {shown.campaign!r}" if shown.campaign else "every campaign (global)"
    print(f"contact policy for {scope}")
    print(f"  from: {shown.origin()}")
    hours = Table("channel", "hours", title="hours (on the contact's clock)")
    for channel, text in _hours_rows(policy):
        hours.add_row(channel, text)
    console.print(hours)
    if policy.states:
        states = Table("state", "voice, dialer", "sms", "email", title="state overrides")
        for state, override in sorted(policy.states.items()):
            states.add_row(
                state,
                *(
                    text or "(general hours)"
                    for text in (override.voice, override.sms, override.email)
                ),
            )
        console.print(states)
    else:
        print("state overrides: none")
    holidays = ", ".join(day.isoformat() for day in sorted(policy.holidays)) or "none"
    print(f"holidays: {holidays}")
    if policy.caps:
        caps = Table("cap", "max", "period", "channels", "per", "states", title="caps")
        for cap in policy.caps:
            caps.add_row(
                cap.name,
                str(cap.max),
                cap.period,
                ", ".join(channel.value for channel in cap.channels),
                cap.per,
                ", ".join(cap.states) if cap.states else "all",
            )
        console.print(caps)
    else:
        print("caps: none")
    print(f"conversation pause: {pause_words(policy.conversation_pause)}")


# --- commands ---------------------------------------------------------------------------------


@policy_app.command("show")
def show_command(campaign: str | None = CAMPAIGN_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The policy in force: global, or a campaign's (its sections over the global ones)."""
    shown = with_database(lambda engine: policy_in_force(engine, campaign))
    if as_json:
        print(json.dumps(shown.as_json(), indent=2))
        return
    print_policy(shown)


def _read_policy_text(file: Path | None, preset: str | None) -> tuple[str, str]:
    """(text, where it came from) of exactly one of a file or a preset."""
    from csm.compliance.policy import PRESETS
    from csm.strategy.values import did_you_mean, with_hint

    if (file is None) == (preset is None):
        raise CsmError("give a policy file or --preset NAME (exactly one)")
    if preset is not None:
        if preset not in PRESETS:
            hint = did_you_mean(preset, PRESETS) or f"presets: {', '.join(PRESETS)}"
            raise CsmError(with_hint(f"unknown preset {preset!r}", hint))
        return PRESETS[preset], f"preset {preset!r}"
    assert file is not None
    return read_small_text(file, f"policy file {file}"), str(file)


def _user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # no user name in this environment
        return ""


@policy_app.command("set")
def set_command(
    file: Path | None = typer.Argument(None, help="the policy file (TOML, docs/policy.md)"),
    preset: str | None = typer.Option(
        None, "--preset", help="a built-in policy instead of a file: reg_f, florida, default"
    ),
    campaign: str | None = CAMPAIGN_OPTION,
    author: str | None = typer.Option(None, "--author", help="who changes it (default: $USER)"),
) -> None:
    """Validate a policy and store it as the scope's next version.

    Running passes use it from their next batch. A campaign's file replaces the
    sections it names (hours, states, holidays, caps, conversation_pause) and
    inherits the rest from the global policy.
    """
    from csm.compliance.policy import PolicyError, parse_policy_text
    from csm.compliance.store import set_policy

    text, origin = _read_policy_text(file, preset)
    try:
        sections = parse_policy_text(text)  # before touching the database: every problem
    except PolicyError as err:
        raise PolicyError(f"{origin}: {err}") from None

    async def store(engine: AsyncEngine) -> tuple[int, PolicyInForce]:
        await _check_campaign(engine, campaign)
        version = await set_policy(engine, text, campaign=campaign, author=author or _user())
        return version, await policy_in_force(engine, campaign)

    version, shown = with_database(store)
    if campaign is None:
        print(f"stored global policy version {version} (from {origin})")
    else:
        replaced = ", ".join(name for name in SECTIONS if name in sections) or "no sections"
        print(
            f"stored policy version {version} of campaign {campaign!r} (from {origin}):"
            f" replaces {replaced}; the rest comes from the global policy"
        )
    print(f"in force: {summary(shown.policy)}")


@policy_app.command("history")
def history_command(
    campaign: str | None = CAMPAIGN_OPTION,
    source: int | None = typer.Option(
        None,
        "--source",
        metavar="N",
        min=1,
        max=2**31 - 1,  # a version is an int column
        help="print version N's file as it was written",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every stored version of the global policy (or a campaign's override), newest first."""
    from csm.compliance.store import policy_history

    async def read(engine: AsyncEngine) -> list[PolicyVersion]:
        await _check_campaign(engine, campaign)
        return await policy_history(engine, campaign)

    versions = with_database(read)
    scope = f"campaign {campaign!r}" if campaign else "the global policy"
    if source is not None:
        chosen = next((v for v in versions if v.version == source), None)
        if chosen is None:
            numbers = ", ".join(str(v.version) for v in versions) or "none"
            raise CsmError(f"{scope} has no version {source} (versions: {numbers})")
        if as_json:
            print(json.dumps(_version_json(chosen, source=True), indent=2))
        else:
            print(chosen.source, end="" if chosen.source.endswith("\n") else "\n")
        return
    if as_json:
        print(json.dumps([_version_json(v) for v in versions], indent=2))
        return
    if not versions:
        default = "the global policy applies" if campaign else "the built-in default applies"
        print(f"no versions of {scope} stored: {default}")
        return
    table = Table("version", "created", "author", "sections", "", title=f"versions of {scope}")
    for number, v in enumerate(versions):
        table.add_row(
            str(v.version),
            f"{v.created_at:%Y-%m-%d %H:%M:%S %Z}",
            escape(v.author or "-"),
            ", ".join(name for name in SECTIONS if name in v.sections) or "(defaults)",
            "in force" if number == 0 else "",
        )
    console.print(table)
