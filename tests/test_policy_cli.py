"""`csm policy` and campaign priority as a user runs them: subprocesses on the test database.

Policies here are campaign-scoped, except one test that sets the global policy and
restores the version it found (other tests rely on the session's baseline).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign, describe_campaign, list_campaigns
from csm.compliance.policy import PRESETS, merge_policy
from csm.compliance.store import effective_policy, policy_history, set_policy
from csm.strategy import load_strategy
from tests.helpers import unique

CSM = [sys.executable, "-m", "csm.cli"]
EXAMPLES = Path(__file__).parent.parent / "examples"
STRATEGY = (EXAMPLES / "payment_reminder.toml").read_text()

CAPS_ONLY = """
[[caps]]
name = "sms_2_a_day"
max = 2
channels = ["sms"]
per = "device"
"""

THREE_MISTAKES = """
[hours]
voice = "21:00-08:00"

[[caps]]
name = "Bad Name"
max = 0

[conversation_pause]
days = 7
results = ["talked"]
"""


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


async def new_campaign(engine: AsyncEngine, *, priority: int | None = None) -> str:
    name = unique("policy")
    extra = {} if priority is None else {"priority": priority}
    await create_campaign(engine, name, load_strategy(STRATEGY), STRATEGY, **extra)
    return name


async def test_campaign_policy_set_show_history(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    (global_now, *_) = await policy_history(engine)

    stored = await csm(
        "policy", "set", "--preset", "reg_f", "--campaign", campaign, "--author", "alice",
        database_url=database_url,
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.splitlines()[0] == (
        f"stored policy version 1 of campaign {campaign!r} (from preset 'reg_f'): replaces "
        "hours, caps, conversation_pause; the rest comes from the global policy"
    )
    assert "caps: reg_f_7_in_7" in stored.stdout

    shown = await csm("policy", "show", "--campaign", campaign, "--json", database_url=database_url)
    assert shown.returncode == 0, shown.stderr
    policy = json.loads(shown.stdout)
    assert policy["campaign_version"]["version"] == 1
    assert policy["campaign_version"]["author"] == "alice"
    assert policy["global_version"]["version"] == global_now.version
    assert policy["overridden_sections"] == ["hours", "caps", "conversation_pause"]
    assert [cap["name"] for cap in policy["policy"]["caps"]] == ["reg_f_7_in_7"]
    assert policy["policy"]["hours"]["voice"] == "08:00-21:00"
    assert policy["policy"]["conversation_pause"]["days"] == 7

    # A second version naming only caps: hours and the pause come from the global policy again.
    caps_file = tmp_path / "caps.toml"
    caps_file.write_text(CAPS_ONLY)
    again = await csm(
        "policy", "set", str(caps_file), "-c", campaign, "--author", "bob",
        database_url=database_url,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"stored policy version 2 of campaign {campaign!r}" in again.stdout
    assert "replaces caps;" in again.stdout
    in_force = await effective_policy(engine, campaign)
    assert [cap.name for cap in in_force.caps] == ["sms_2_a_day"]
    assert in_force.caps[0].per == "device"
    assert in_force.conversation_pause is None  # the global baseline has none
    assert in_force.hours.voice == "any"  # the baseline's hours, inherited

    table = await csm("policy", "show", "-c", campaign, database_url=database_url)
    assert table.returncode == 0, table.stderr
    assert f"from: campaign {campaign!r} version 2 (replaces caps) over global version" in (
        table.stdout
    )
    for text in ("sms_2_a_day", "device", "conversation pause: none", "holidays: none"):
        assert text in table.stdout

    history = await csm("policy", "history", "-c", campaign, "--json", database_url=database_url)
    assert history.returncode == 0, history.stderr
    versions = json.loads(history.stdout)
    assert [(v["version"], v["author"]) for v in versions] == [(2, "bob"), (1, "alice")]
    assert versions[0]["sections"] == ["caps"]

    listed = await csm("policy", "history", "-c", campaign, database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    assert "in force" in listed.stdout and "alice" in listed.stdout

    source = await csm(
        "policy", "history", "-c", campaign, "--source", "1", database_url=database_url
    )
    assert source.returncode == 0, source.stderr
    assert source.stdout == PRESETS["reg_f"]

    missing = await csm(
        "policy", "history", "-c", campaign, "--source", "9", database_url=database_url
    )
    assert missing.returncode == 1
    assert missing.stderr == (
        f"csm: error: campaign {campaign!r} has no version 9 (versions: 2, 1)\n"
    )


async def test_bad_policies_store_nothing(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    bad = tmp_path / "bad.toml"
    bad.write_text(THREE_MISTAKES)
    refused = await csm("policy", "set", str(bad), "-c", campaign, database_url=database_url)
    assert refused.returncode == 1
    assert refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"csm: error: {bad}: ")
    for key in ("hours.voice", "caps[1].name", "caps[1].max", "conversation_pause.results[1]"):
        assert f"{key}: " in line, key
    assert "unknown result code 'talked'" in line

    not_toml = tmp_path / "not.toml"
    not_toml.write_text("[hours\n")
    broken = await csm("policy", "set", str(not_toml), "-c", campaign, database_url=database_url)
    assert broken.returncode == 1 and "not valid TOML" in broken.stderr

    typo = await csm(
        "policy", "set", "--preset", "reg-f", "-c", campaign, database_url=database_url
    )
    assert typo.returncode == 1
    assert typo.stderr == "csm: error: unknown preset 'reg-f' (did you mean 'reg_f'?)\n"
    far = await csm("policy", "set", "--preset", "xyz", "-c", campaign, database_url=database_url)
    assert far.returncode == 1
    assert "presets: reg_f, florida, default" in far.stderr

    both = await csm(
        "policy", "set", str(bad), "--preset", "reg_f", "-c", campaign, database_url=database_url
    )
    neither = await csm("policy", "set", "-c", campaign, database_url=database_url)
    for result in (both, neither):
        assert result.returncode == 1
        assert result.stderr == "csm: error: give a policy file or --preset NAME (exactly one)\n"

    unreadable = await csm(
        "policy", "set", str(tmp_path / "nope.toml"), "-c", campaign, database_url=database_url
    )
    assert unreadable.returncode == 1
    assert unreadable.stderr.startswith(f"csm: error: cannot read policy file {tmp_path}")

    unknown = await csm(
        "policy", "set", "--preset", "reg_f", "-c", campaign + "x", database_url=database_url
    )
    assert unknown.returncode == 1
    assert unknown.stderr == (
        f"csm: error: unknown campaign '{campaign}x' (did you mean '{campaign}'?)\n"
    )

    assert await policy_history(engine, campaign) == []
    empty = await csm("policy", "history", "-c", campaign, database_url=database_url)
    assert empty.returncode == 0
    assert "no versions of campaign" in empty.stdout and "the global policy applies" in empty.stdout
    shown = await csm("policy", "show", "-c", campaign, "--json", database_url=database_url)
    assert json.loads(shown.stdout)["campaign_version"] is None


async def test_global_policy_set_then_restored(engine: AsyncEngine, database_url: str) -> None:
    (before, *_) = await policy_history(engine)
    try:
        stored = await csm(
            "policy", "set", "--preset", "florida", "--author", "tests",
            database_url=database_url,
        )  # fmt: skip
        assert stored.returncode == 0, stored.stderr
        assert stored.stdout.startswith(
            f"stored global policy version {before.version + 1} (from preset 'florida')"
        )
        shown = await csm("policy", "show", "--json", database_url=database_url)
        policy = json.loads(shown.stdout)
        assert policy["campaign"] is None and policy["campaign_version"] is None
        assert policy["global_version"]["version"] == before.version + 1
        assert policy["policy"]["states"]["FL"]["voice"] == "08:00-20:00"
        assert policy["policy"]["caps"][0]["states"] == ["FL"]
        # The florida preset names no [hours]: the built-in default hours apply again.
        assert policy["policy"]["hours"]["voice"] == "08:00-21:00"

        table = await csm("policy", "show", database_url=database_url)
        assert table.returncode == 0, table.stderr
        assert f"from: global version {before.version + 1}" in table.stdout
        for text in ("state overrides", "FL", "fl_3_per_24h", "24h", "(general hours)"):
            assert text in table.stdout, text
    finally:
        await set_policy(engine, before.source, author="tests: restore")
    assert await effective_policy(engine) == merge_policy(before.sections, {})
    assert (await policy_history(engine))[0].sections == before.sections


async def test_campaign_priority(engine: AsyncEngine, database_url: str) -> None:
    plain = await new_campaign(engine)  # existing callers: no priority given → 0
    assert (await describe_campaign(engine, plain)).priority == 0

    name = unique("urgent")
    created = await csm(
        "campaigns", "create", name, "-s", str(EXAMPLES / "payment_reminder.toml"),
        "--priority", "5", database_url=database_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert f"created campaign {name!r} (America/Chicago, priority 5)" in created.stdout
    assert (await describe_campaign(engine, name)).priority == 5

    changed = await csm("campaigns", "priority", name, "9", database_url=database_url)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == f"campaign {name!r}: priority 9\n"
    shown = await csm("campaigns", "show", name, "--json", database_url=database_url)
    assert json.loads(shown.stdout)["priority"] == 9
    table = await csm("campaigns", "show", name, database_url=database_url)
    assert "priority 9" in table.stdout

    lowered = await csm("campaigns", "priority", name, "--", "-3", database_url=database_url)
    assert lowered.returncode == 0, lowered.stderr
    listed = await csm("campaigns", "list", "--json", database_url=database_url)
    (mine,) = [c for c in json.loads(listed.stdout) if c["name"] == name]
    assert mine["priority"] == -3
    assert {s.name: s.priority for s in await list_campaigns(engine)}[plain] == 0

    too_big = await csm("campaigns", "priority", name, "99999999", database_url=database_url)
    assert too_big.returncode == 1
    assert "priority is a whole number from -1000000 to 1000000" in too_big.stderr
    unknown = await csm("campaigns", "priority", name + "z", "1", database_url=database_url)
    assert unknown.returncode == 1
    assert unknown.stderr == f"csm: error: unknown campaign '{name}z' (did you mean '{name}'?)\n"
    assert (await describe_campaign(engine, name)).priority == -3
