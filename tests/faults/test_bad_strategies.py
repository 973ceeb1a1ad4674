"""Malformed strategy files: refused with what and where, and no campaign is stored.

Each case goes through `load_strategy` (the message names the pass by number
and name, and the field), through the Python path that creates a campaign
from strategy text, and through `csm campaigns create` run by typer's runner
in this process: the error must be a CsmError, which `csm` prints as one
`csm: error:` line with exit 1, never a traceback (test_hostile_cli.py runs
real processes). Afterwards no campaign of that name exists and the campaign
tables hold as many rows as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from csm.campaigns import create_campaign
from csm.cli.main import app
from csm.errors import CsmError
from csm.strategy import StrategyError, load_strategy
from tests.faults.snapshot import count_where, delete_like, row_counts

CAMPAIGN_TABLES = ("campaigns", "strategies", "response_groups")
#: Every campaign name here starts with this, so whatever a bug lets in is removed after.
PREFIX = f"faults-{uuid.uuid4().hex[:8]}-"

ZONE = 'timezone = "America/Chicago"\n'
GROUPS = '[response_groups.reached]\ncodes = ["delivered_person", "success"]\n'
FIRST = '[[passes]]\nname = "morning calls"\nchannel = "voice"\n'


def second(body: str, name: str = "evening texts", channel: str = "sms") -> str:
    """A valid first pass, then a second pass with `body` (where the mistake is)."""
    return f'{ZONE}{GROUPS}{FIRST}[[passes]]\nname = "{name}"\nchannel = "{channel}"\n{body}\n'


def first(body: str) -> str:
    """A strategy whose only pass carries `body` (for first-pass-only mistakes)."""
    return f"{ZONE}{GROUPS}{FIRST}{body}\n"


@dataclass(frozen=True)
class BadStrategy:
    id: str
    text: str
    where: str  # the location: "pass 2 'evening texts': after", "timezone", "line 1, ..."
    says: tuple[str, ...]  # fragments of the message


CASES = [
    BadStrategy(
        "not_toml",
        "timezone: America/Chicago\npasses:\n  - name: calls\n    channel: voice\n",
        "line 1, column 9",
        ("TOML syntax",),
    ),
    BadStrategy("missing_timezone", GROUPS + FIRST, "timezone", ("required key is missing",)),
    BadStrategy(
        "unknown_timezone",
        'timezone = "America/Chicgo"\n' + FIRST,
        "timezone",
        ("unknown time zone 'America/Chicgo'", "did you mean 'America/Chicago'?"),
    ),
    BadStrategy("no_passes", ZONE + GROUPS, "passes", ("required key is missing",)),
    BadStrategy(
        "unknown_channel",
        second("", name="faxes", channel="fax"),
        "pass 2 'faxes': channel",
        ("'fax' is not one of voice, dialer, sms, email",),
    ),
    BadStrategy(
        "unknown_key_did_you_mean",
        second('filtr = "attempts = 0"'),
        "pass 2 'evening texts'",
        ("unknown key 'filtr'", "(did you mean 'filter'?)"),
    ),
    BadStrategy(
        "bad_duration",
        second('after = "an hour"'),
        "pass 2 'evening texts': after",
        ("expected a duration", "'an hour'"),
    ),
    BadStrategy(
        "duration_too_large",
        second('after = "99999999999d"'),
        "pass 2 'evening texts': after",
        ("99999999999d",),
    ),
    BadStrategy(
        "window_end_before_start",
        second('window = { start = "17:00", end = "09:00" }'),
        "pass 2 'evening texts': window",
        ("end 09:00 must be after start 17:00",),
    ),
    BadStrategy(
        "bad_filter_syntax",
        second("filter = \"attempts = 0 and (last_result = 'busy'\""),
        "pass 2 'evening texts': filter",
        ("expected ')'", "column"),
    ),
    BadStrategy(
        "unknown_filter_field",
        second('filter = "atempts < 3"'),
        "pass 2 'evening texts': filter",
        ("unknown field 'atempts' at column 1", "did you mean 'attempts'?"),
    ),
    BadStrategy(
        "unknown_response_group_in_filter",
        second("filter = \"last_group = 'promised'\""),
        "pass 2 'evening texts': filter",
        ("unknown response group 'promised'",),
    ),
    BadStrategy(
        "unknown_result_code_in_group",
        ZONE
        + '[response_groups.reached]\ncodes = ["delivered_person", "deliverd_machine"]\n'
        + FIRST,
        "response_groups.reached.codes[1]",
        ("unknown result code 'deliverd_machine'", "did you mean 'delivered_machine'?"),
    ),
    BadStrategy(
        "dialer_pass_with_template",
        second('template = "Hello, please call us back"', name="agents", channel="dialer"),
        "pass 2 'agents': template",
        ("dialer passes have no message template",),
    ),
    BadStrategy(
        "sms_pass_with_landline",
        second('devices = ["wireless", "landline"]'),
        "pass 2 'evening texts': devices",
        ("landline cannot be used by an sms pass",),
    ),
    BadStrategy(
        "alongside_on_first_pass",
        first("alongside = true"),
        "pass 1 'morning calls': alongside",
        ("the first pass has no previous pass",),
    ),
    BadStrategy(
        "duplicate_pass_names",
        second("", name="Morning Calls"),
        "pass 2 'Morning Calls': name",
        ("duplicate pass name 'Morning Calls' (pass 1 has it)",),
    ),
    BadStrategy(
        "source_previous_on_first_pass",
        first('source = "previous"'),
        "pass 1 'morning calls': source",
        ("the first pass has no previous pass",),
    ),
    BadStrategy(
        "negative_retries",
        second("retries = { per_device = -1 }"),
        "pass 2 'evening texts': retries.per_device",
        ("greater than or equal to 0", "-1"),
    ),
    BadStrategy(
        "pacing_concurrency_zero",
        second("pacing = { concurrency = 0 }"),
        "pass 2 'evening texts': pacing.concurrency",
        ("greater than 0",),
    ),
    BadStrategy(
        "pacing_shards_beyond_the_limit",
        second("pacing = { shards = 64, concurrency = 100 }"),
        "pass 2 'evening texts': pacing.shards",
        ("less than or equal to 32", "64"),
    ),
    BadStrategy(
        "pacing_shards_without_a_share_each",
        second("pacing = { shards = 4, per_minute = 2 }"),
        "pass 2 'evening texts': pacing",
        ("pacing.per_minute (2) is less than pacing.shards (4)",),
    ),
    BadStrategy(
        "predictive_mode_on_voice_pass",
        second('pacing = { mode = "predictive" }', name="evening calls", channel="voice"),
        "pass 2 'evening calls'",
        ("pacing.mode is for dialer passes", "voice pass"),
    ),
    BadStrategy(
        # The pass would be planned on a day after the end of the calendar (year 9999):
        # planning the sub-campaign's day would fail on every try.
        "days_to_wait_beyond_the_calendar",
        second("days_to_wait = 99999999999"),
        "pass 2 'evening texts'",
        ("days_to_wait",),
    ),
    BadStrategy(
        # TOML allows the escape; PostgreSQL cannot store NUL in the strategy's JSON.
        "nul_in_pass_name",
        second("", name="evening\\u0000texts"),
        "pass 2",
        ("name",),
    ),
]
IDS = [case.id for case in CASES]


@pytest.fixture(scope="module", autouse=True)
async def remove_what_got_in(engine: AsyncEngine) -> AsyncIterator[None]:
    yield
    await delete_like(engine, "campaigns", "name", f"{PREFIX}%")


def check_message(message: str, case: BadStrategy, source: str) -> None:
    assert message.startswith(f"{source}: "), message
    assert case.where in message, message
    for fragment in case.says:
        assert fragment in message, message


async def create_from_text(engine: AsyncEngine, name: str, text: str) -> None:
    """What `csm campaigns create` does with a strategy file's text, in this process."""
    definition = load_strategy(text, source=f"{name}.toml")
    await create_campaign(engine, name, definition, text)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_refused_with_where_and_what_and_nothing_stored(
    engine: AsyncEngine, case: BadStrategy
) -> None:
    name = f"{PREFIX}{case.id}"
    before = await row_counts(engine, CAMPAIGN_TABLES)
    try:
        await create_from_text(engine, name, case.text)
    except Exception as raised:
        error = raised
    else:
        pytest.fail("the strategy was accepted and the campaign created")
    assert isinstance(error, StrategyError), f"{type(error).__name__}: {error}"
    check_message(str(error), case, f"{name}.toml")
    assert len(error.issues) == 1, error.issues  # one mistake, one problem reported
    assert "\n" not in str(error)
    assert await count_where(engine, "campaigns", "name", name) == 0
    assert await row_counts(engine, CAMPAIGN_TABLES) == before


def invoke_cli(args: list[str]) -> Result:
    """The `csm` command line in this process (typer's runner), as a user would type it."""
    return CliRunner().invoke(app, args, prog_name="csm")


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_cli_create_is_one_clear_line_and_stores_nothing(
    engine: AsyncEngine,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: BadStrategy,
) -> None:
    """`csm campaigns create NAME --strategy FILE`: run_and_exit prints a CsmError as the one
    line `csm: error: ...` and exits 1; any other exception would be a traceback."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    name = f"{PREFIX}cli-{case.id}"
    file = tmp_path / f"{case.id}.toml"
    file.write_text(case.text, encoding="utf-8")
    before = await row_counts(engine, CAMPAIGN_TABLES)

    result = await asyncio.to_thread(
        invoke_cli, ["campaigns", "create", name, "--strategy", str(file)]
    )

    error = result.exception
    assert isinstance(error, CsmError), f"exit {result.exit_code}: {error!r}\n{result.output}"
    assert result.exit_code == 1
    assert result.stdout == ""
    line = f"csm: error: {error}"
    assert "\n" not in line, line
    check_message(line, case, f"csm: error: {file}")
    assert await count_where(engine, "campaigns", "name", name) == 0
    assert await row_counts(engine, CAMPAIGN_TABLES) == before
