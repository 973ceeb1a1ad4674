"""Strategy files → validated models: defaults, every error at once, JSON round trip."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from csm.strategy import (
    PassDefinition,
    StrategyDefinition,
    StrategyError,
    UnknownPassError,
    load_strategy,
    load_strategy_file,
)
from csm.strategy.durations import DurationError, format_duration, parse_duration
from csm.vocabulary import Channel, DeviceKind

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))

BRIEF_EXAMPLE = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "agent_connected", "success"]
[response_groups.paid]
codes = ["promise_to_pay"]
final = "all_campaigns"
[[passes]]
name = "morning voice"
channel = "voice"
filter = "attempts = 0"
devices = ["wireless", "landline"]
window = { start = "09:00", end = "12:00", zone = "contact" }
pacing = { per_minute = 600, concurrency = 50 }
retries = { per_device = 1, gap = "10m" }
[[passes]]
name = "retry no answers"
channel = "voice"
source = "previous"
filter = "last_result in ('no_answer', 'busy')"
after = "1h"
days_to_wait = 0
"""

MANY_MISTAKES = """
timezone = "America/Chicago"
[response_groups.reached]
codes = ["delivered_person", "agent_connected"]
[response_groups.paid]
codes = ["promise_to_pya"]
[[passes]]
name = "morning voice"
channel = "voice"
after = "1h"
window = { start = "9h", end = "12:00" }
[[passes]]
name = "retry no answers"
channel = "voice"
source = "previous"
filter = "atempts < 3"
fiter = "x"
after = "an hour"
[[passes]]
name = "texts"
channel = "sms"
devices = ["wireless", "landline"]
window = { start = "18:00", end = "09:00" }
[[passes]]
name = "texts"
channel = "fax"
"""


def test_the_brief_example_loads() -> None:
    strategy = load_strategy(BRIEF_EXAMPLE)
    first, second = strategy.passes
    assert strategy.timezone == "America/Chicago"
    assert strategy.groups() == {
        "reached": ["delivered_person", "agent_connected", "success"],
        "paid": ["promise_to_pay"],
    }
    assert strategy.response_groups["paid"].final == "all_campaigns"
    assert first.channel is Channel.VOICE
    assert (
        first.window is not None and first.window.start == time(9) and first.window.end == time(12)
    )
    assert first.pacing.per_minute == 600 and first.pacing.concurrency == 50
    assert first.retries.per_device == 1 and first.retries.gap == timedelta(minutes=10)
    assert second.source == "previous" and second.after == timedelta(hours=1)
    assert strategy.pass_by_name("retry no answers") is second
    assert strategy.pass_number("retry no answers") == 2


def test_smallest_strategy_gets_documented_defaults() -> None:
    strategy = load_strategy(
        'timezone = "UTC"\n'
        '[[passes]]\nname = "texts"\nchannel = "sms"\n'
        '[[passes]]\nname = "calls"\nchannel = "dialer"\n'
        '[[passes]]\nname = "mail"\nchannel = "email"\n'
    )
    texts, calls, mail = strategy.passes
    assert strategy.response_groups == {}
    assert texts.devices == [DeviceKind.WIRELESS]
    assert calls.devices == [DeviceKind.WIRELESS, DeviceKind.LANDLINE]
    assert mail.devices == [DeviceKind.EMAIL]
    assert texts.source == "all" and texts.filter == ""
    assert texts.window is None and texts.after is None and texts.days_to_wait == 0
    assert texts.allowed_days == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert texts.pacing.per_minute is None and texts.pacing.concurrency == 10
    assert texts.retries.per_device == 0 and texts.retries.gap == timedelta(minutes=10)
    assert texts.template is None and texts.subject is None


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(path: Path) -> None:
    strategy, text = load_strategy_file(path)
    assert text.startswith("#"), "examples explain themselves in comments"
    assert strategy.passes


def test_the_promised_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "payment_reminder.toml",
        "collections_under_caps.toml",
        "appointment_reminder.toml",
        "recovery.toml",
    } <= names
    recovery = load_strategy_file(Path(__file__).parent.parent / "examples" / "recovery.toml")[0]
    assert {p.channel for p in recovery.passes} == {Channel.VOICE, Channel.DIALER}


def test_many_mistakes_are_reported_all_at_once_with_locations() -> None:
    with pytest.raises(StrategyError) as caught:
        load_strategy(MANY_MISTAKES, source="bad.toml")
    lines = [str(issue) for issue in caught.value.issues]
    expected = [
        "response_groups.paid.codes[0]: unknown result code 'promise_to_pya' "
        "(did you mean 'promise_to_pay'?)",
        "pass 1 'morning voice': after: the first pass has no previous pass",
        "pass 1 'morning voice': window.start: expected a time of day",
        "pass 2 'retry no answers': filter: unknown field 'atempts' at column 1 "
        "(did you mean 'attempts'?)",
        "pass 2 'retry no answers': unknown key 'fiter' (did you mean 'filter'?)",
        "pass 2 'retry no answers': after: expected a duration",
        "pass 3 'texts': devices: landline cannot be used by an sms pass",
        "pass 3 'texts': window: end 09:00 must be after start 18:00",
        "pass 4 'texts': name: duplicate pass name 'texts'",
        "pass 4 'texts': channel: 'fax' is not one of voice, dialer, sms, email",
    ]
    for wanted in expected:
        assert any(line.startswith(wanted) for line in lines), (wanted, lines)
    assert len(lines) == len(expected), lines
    text = str(caught.value)
    assert text.splitlines()[0] == f"bad.toml: {len(expected)} problems:"
    assert len(text.splitlines()) == len(expected) + 1


def test_one_problem_is_one_line() -> None:
    with pytest.raises(StrategyError) as caught:
        load_strategy('timezone = "UTC"\n[[passes]]\nname = "a"\nchannel = "voise"\n', source="f")
    assert str(caught.value) == (
        "f: pass 1 'a': channel: 'voise' is not one of voice, dialer, sms, email "
        "(did you mean 'voice'?)"
    )


def test_toml_syntax_error_gives_line_and_column() -> None:
    with pytest.raises(StrategyError) as caught:
        load_strategy('timezone = "UTC"\n[[passes]\nname = "a"\n', source="f.toml")
    (issue,) = caught.value.issues
    assert issue.location == "line 2, column 9"
    assert issue.message.startswith("TOML syntax: ")


@pytest.mark.parametrize(
    ("body", "location", "message"),
    [
        ('timezon = "UTC"', "top level", "unknown key 'timezon' (did you mean 'timezone'?)"),
        ('timezone = "Europe/Pariss"', "timezone", "did you mean 'Europe/Paris'?"),
        ("[[pases]]", "top level", "unknown key 'pases' (did you mean 'passes'?)"),
        ("[passes]", "passes", "[[passes]]"),
        ("[response_groups.bad-name]\ncodes = ['busy']", "response_groups.bad-name", "identifier"),
        ("[response_groups.empty]\ncodes = []", "response_groups.empty.codes", "at least 1 item"),
    ],
)
def test_top_level_problems(body: str, location: str, message: str) -> None:
    text = body if "timezon" in body else f'timezone = "UTC"\n{body}'
    if "pases" not in body and "[passes]" not in body:
        text += '\n[[passes]]\nname = "a"\nchannel = "voice"\n'
    with pytest.raises(StrategyError) as caught:
        load_strategy(text)
    found = [i for i in caught.value.issues if i.location == location]
    assert found and message in found[0].message, caught.value.issues


def _pass_problem(keys: str, channel: str = "voice") -> str:
    text = f'timezone = "UTC"\n[[passes]]\nname = "p"\nchannel = "{channel}"\n{keys}\n'
    with pytest.raises(StrategyError) as caught:
        load_strategy(text)
    (issue,) = caught.value.issues
    return str(issue)


@pytest.mark.parametrize(
    ("keys", "channel", "expected"),
    [
        ('source = "previous"', "voice", "pass 1 'p': source: the first pass has no previous"),
        ('source = "prev"', "voice", "pass 1 'p': source: 'prev' is not one of all, previous"),
        ('devices = ["email"]', "voice", "devices: email cannot be used by a voice pass"),
        ('devices = ["landline"]', "sms", "devices: landline cannot be used by an sms pass"),
        ('devices = ["wireless"]', "email", "devices: wireless cannot be used by an email pass"),
        ('devices = ["wireless", "wireless"]', "voice", "devices: wireless listed more than once"),
        ("devices = []", "voice", "devices: list at least one device kind"),
        ('devices = ["fax"]', "voice", "devices[0]: 'fax' is not one of wireless"),
        ('window = { start = "09:00" }', "voice", "window.end: required key is missing"),
        ('window = { start = "9:00", end = "9:00" }', "voice", "window: end 09:00 must be after"),
        ('window = { start = "09:00", end = "24:00" }', "voice", "window.end: '24:00' is not"),
        ('window = { start = "09:00", end = "10:00", zone = "Mars/Base" }', "voice", "zone"),
        ('window = { start = "09:00", end = "10:00", ends = "x" }', "voice", "'ends'"),
        ("per_minute = 5", "voice", "unknown key 'per_minute' (it belongs in pacing, like pacing"),
        ('window = "9-5"', "voice", "window: expected a table ({ key = value, ... }), got '9-5'"),
        ("pacing = { per_minute = 0 }", "voice", "pacing.per_minute: input should be greater"),
        ('pacing = { concurrency = "5" }', "voice", "pacing.concurrency: input should be a valid"),
        ("retries = { per_device = 11 }", "voice", "retries.per_device: input should be less"),
        ('retries = { gap = "10 minutes" }', "voice", "retries.gap: expected a duration"),
        ('retries = { gap = "1m1h" }', "voice", "retries.gap: duration '1m1h': each unit once"),
        ("days_to_wait = -1", "voice", "days_to_wait: input should be greater than or equal"),
        ('allowed_days = ["mon", "mon"]', "voice", "allowed_days: mon listed more than once"),
        ("allowed_days = []", "voice", "allowed_days: list at least one weekday"),
        ('allowed_days = ["funday"]', "voice", "allowed_days[0]: 'funday' is not one of mon"),
        ('template = "Hi ${first name}"', "sms", "template: bad placeholder at character 4"),
        ('template = "Pay $5 now"', "sms", "template: bad placeholder at character 5"),
        ('template = "Hello"', "dialer", "template: dialer passes have no message template"),
        ('subject = "Hello"', "sms", "subject: only email passes have a subject"),
        ('name = "q"', "voice", "TOML syntax"),  # a key defined twice
        ("filter = \"last_group = 'machine'\"", "voice", "filter: unknown response group"),
    ],
)
def test_pass_problems(keys: str, channel: str, expected: str) -> None:
    assert expected in _pass_problem(keys, channel)


def test_name_must_not_be_blank() -> None:
    with pytest.raises(StrategyError) as caught:
        load_strategy('timezone = "UTC"\n[[passes]]\nname = "  "\nchannel = "voice"\n')
    assert [str(i) for i in caught.value.issues] == ["pass 1: name: must not be empty"]


def test_filters_may_name_the_strategys_groups() -> None:
    strategy = load_strategy(
        'timezone = "UTC"\n[response_groups.machine]\ncodes = ["delivered_machine"]\n'
        '[[passes]]\nname = "a"\nchannel = "voice"\n'
        "filter = \"last_group = 'machine' and attempts < 3 and not ever('machine')\"\n"
    )
    assert strategy.passes[0].filter.startswith("last_group")


def test_friendly_spellings_are_normalised() -> None:
    strategy = load_strategy(
        'timezone = "UTC"\n[[passes]]\nname = " a "\nchannel = "voice"\n'
        'allowed_days = ["Monday", "TUE"]\n'
        'window = { start = 09:30:00, end = "17:00", zone = "campaign" }\n'
    )
    step = strategy.passes[0]
    assert step.name == "a"
    assert step.allowed_days == ["mon", "tue"]
    assert step.window is not None and step.window.start == time(9, 30)


def test_json_round_trip_is_identical_and_readable() -> None:
    for path in [*EXAMPLES, None]:
        strategy = load_strategy(BRIEF_EXAMPLE) if path is None else load_strategy_file(path)[0]
        dumped = strategy.model_dump(mode="json")
        assert StrategyDefinition.model_validate(dumped) == strategy
        assert StrategyDefinition.model_validate_json(json.dumps(dumped)) == strategy
        assert StrategyDefinition.model_validate_json(strategy.model_dump_json()) == strategy
    dumped = load_strategy(BRIEF_EXAMPLE).model_dump(mode="json")
    assert dumped["passes"][0]["window"] == {"start": "09:00", "end": "12:00", "zone": "contact"}
    assert dumped["passes"][0]["retries"] == {"per_device": 1, "gap": "10m"}
    assert dumped["passes"][1]["after"] == "1h"
    assert dumped["passes"][0]["channel"] == "voice"


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="unknown field 'atempts'"):
        StrategyDefinition(
            timezone="UTC",
            passes=[PassDefinition(name="a", channel=Channel.VOICE, filter="atempts")],
        )
    with pytest.raises(ValidationError, match="duplicate pass name"):
        StrategyDefinition(
            timezone="UTC",
            passes=[
                PassDefinition(name="a", channel=Channel.VOICE),
                PassDefinition(name="A", channel=Channel.SMS),
            ],
        )


def test_unknown_pass_name_suggests_the_closest() -> None:
    strategy = load_strategy(BRIEF_EXAMPLE)
    with pytest.raises(UnknownPassError, match="did you mean 'morning voice'"):
        strategy.pass_by_name("morning voise")


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("90s", 90, "1m30s"),
        ("10m", 600, "10m"),
        ("1h", 3600, "1h"),
        ("1h30m", 5400, "1h30m"),
        ("2d", 172800, "2d"),
        ("1d2h3m4s", 93784, "1d2h3m4s"),
        ("0s", 0, "0s"),
        (" 1H ", 3600, "1h"),
    ],
)
def test_durations_parse_and_format(text: str, seconds: int, canonical: str) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert format_duration(timedelta(seconds=seconds)) == canonical
    assert parse_duration(canonical) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "1.5h", "-1h", "1h 30m", "10min", "1s1h", "1h1h"])
def test_bad_durations_say_what_a_duration_looks_like(text: str) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)
