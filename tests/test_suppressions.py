"""Suppression lists on the real database: targets, scopes, imports, STOP replies, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.campaigns import create_campaign
from csm.cli.suppress import import_summary
from csm.lists import import_list
from csm.lists.phones import PhoneError, PhoneNormaliser
from csm.strategy import load_strategy
from csm.suppressions import (
    MAX_LISTED_PROBLEMS,
    STOP_REPLY,
    SuppressionError,
    SuppressionImportError,
    SuppressionKind,
    Target,
    add_suppression,
    ensure_suppression,
    import_suppressions,
    is_opt_out,
    list_suppressions,
    normalise_target,
    receive_sms,
    remove_suppression,
    remove_target,
)
from tests.helpers import unique

CSM = [sys.executable, "-m", "csm.cli"]
STRATEGY = """
timezone = "America/Chicago"
[[passes]]
name = "morning voice"
channel = "voice"
"""
_PHONES = PhoneNormaliser("US")
_RNG = random.Random()


def fresh_phone() -> tuple[str, str]:
    """A valid (617) number no other test uses: (its spelling in a file, its E.164 form).

    Synthetic lists use area codes 212, 312, 303, 213 and 602, so a pass's STOP
    replies elsewhere in the session never touch these.
    """
    while True:
        exchange, line = _RNG.randrange(200, 1000), _RNG.randrange(10000)
        spelled = f"(617) {exchange:03d}-{line:04d}"
        try:
            return spelled, _PHONES.normalise(spelled).e164
        except PhoneError:
            continue


def fresh_email() -> str:
    return f"{unique('Person')}@Example.COM"


async def new_campaign(engine: AsyncEngine) -> str:
    name = unique("suppr")
    await create_campaign(engine, name, load_strategy(STRATEGY), STRATEGY)
    return name


async def stored(engine: AsyncEngine, value: str) -> list[tuple[str | None, str, str]]:
    """(campaign name, kind, reason) of every suppression of `value`."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT c.name, s.kind, s.reason FROM suppressions s"
                " LEFT JOIN campaigns c ON c.id = s.campaign_id WHERE s.value = :v"
                " ORDER BY s.id"
            ),
            {"v": value},
        )
        return [tuple(row) for row in rows]


# -- targets ---------------------------------------------------------------------------------


def test_targets_are_normalised_like_the_list_importer() -> None:
    assert normalise_target("phone", "(415) 555-0100") == "+14155550100"
    assert normalise_target("phone", " +1 415.555.0100 ") == "+14155550100"
    assert normalise_target("phone", "020 7946 0018", default_region="GB") == "+442079460018"
    assert normalise_target("email", "  Alice.Smith@Example.COM ") == "alice.smith@example.com"
    assert normalise_target("account", "  ACC-1042 ") == "ACC-1042"
    with pytest.raises(SuppressionError, match="not a valid phone number"):
        normalise_target("phone", "555-0100")
    # Exactly E.164 is kept as written even where the plan knows no such exchange (synthetic
    # lists use 602-100...), so every stored device can be suppressed; spelt otherwise, it is bad.
    assert normalise_target("phone", "+16021000002") == "+16021000002"
    with pytest.raises(SuppressionError, match="not a valid phone number"):
        normalise_target("phone", "+1 602 100 0002")
    with pytest.raises(SuppressionError, match="not a valid e-mail address"):
        normalise_target("email", "alice@")
    with pytest.raises(SuppressionError, match="formula-like"):
        normalise_target("account", "=HYPERLINK(1)")
    with pytest.raises(SuppressionError, match=r"unknown kind 'phon'.*did you mean 'phone'"):
        normalise_target("phon", "x")


def test_a_target_is_named_by_exactly_one_keyword_and_normalised_once() -> None:
    target = Target.one_of({"account": None, "phone": "(415) 555-0100", "email": None})
    assert target == Target(SuppressionKind.PHONE, "+14155550100")
    assert Target.read(SuppressionKind.EMAIL, " A@Example.COM ").value == "a@example.com"
    with pytest.raises(SuppressionError, match="exactly one target"):
        Target.one_of({"account": "A-1", "email": "a@example.com"})
    with pytest.raises(SuppressionError, match="exactly one target"):
        Target.one_of({})
    with pytest.raises(TypeError, match="'fax'"):
        Target.one_of({"fax": "1"})  # type: ignore[typeddict-unknown-key]


async def test_add_is_idempotent_per_scope_and_remove_by_id(engine: AsyncEngine) -> None:
    campaign = await new_campaign(engine)
    spelled, e164 = fresh_phone()

    first = await add_suppression(engine, phone=spelled)
    again = await add_suppression(engine, phone=e164, reason="something_else")
    scoped = await ensure_suppression(engine, phone=spelled, campaign=campaign)
    scoped_again = await ensure_suppression(engine, phone=e164, campaign=campaign)

    assert again == first
    assert scoped.created and scoped.id != first and scoped.value == e164
    assert not scoped_again.created and scoped_again.id == scoped.id
    # The second add changed nothing: the first reason stays.
    assert await stored(engine, e164) == [
        (None, "phone", "do_not_contact"),
        (campaign, "phone", "do_not_contact"),
    ]

    removed = await remove_suppression(engine, first)
    assert (removed.id, removed.campaign, removed.kind, removed.value) == (
        first,
        None,
        "phone",
        e164,
    )
    assert await stored(engine, e164) == [(campaign, "phone", "do_not_contact")]
    with pytest.raises(SuppressionError, match=f"no suppression with id {first}"):
        await remove_suppression(engine, first)


async def test_add_rejects_bad_requests_and_writes_nothing(engine: AsyncEngine) -> None:
    campaign = await new_campaign(engine)
    spelled, e164 = fresh_phone()
    with pytest.raises(SuppressionError, match="exactly one target"):
        await add_suppression(engine)
    with pytest.raises(SuppressionError, match="exactly one target"):
        await add_suppression(engine, phone=spelled, email=fresh_email())
    with pytest.raises(SuppressionError, match=r"unknown campaign .*did you mean"):
        await add_suppression(engine, phone=spelled, campaign=campaign + "x")
    with pytest.raises(SuppressionError, match="longer than 32 characters"):
        await add_suppression(engine, phone=spelled, reason="x" * 33)
    with pytest.raises(SuppressionError, match="not a valid phone number"):
        await add_suppression(engine, phone="12")
    assert await stored(engine, e164) == []


async def test_remove_target_by_scope(engine: AsyncEngine) -> None:
    campaign = await new_campaign(engine)
    other = await new_campaign(engine)
    address = fresh_email()
    for scope in (None, campaign, other):
        await add_suppression(engine, email=address, campaign=scope)

    assert await remove_target(engine, email=address) == 1  # the global one only
    assert await remove_target(engine, email=address) == 0
    assert await remove_target(engine, email=address.upper(), campaign=campaign) == 1
    assert await stored(engine, address.lower()) == [(other, "email", "do_not_contact")]
    await add_suppression(engine, email=address)
    assert await remove_target(engine, email=address, every_scope=True) == 2
    assert await stored(engine, address.lower()) == []
    with pytest.raises(SuppressionError, match="not both"):
        await remove_target(engine, email=address, campaign=campaign, every_scope=True)


async def test_suppression_holds_for_accounts_and_devices_imported_later(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The pass activities' own test: account key and device value against the stored targets."""
    prefix = unique("later")
    spelled, e164 = fresh_phone()
    _, other_phone = fresh_phone()
    _, third_phone = fresh_phone()
    await add_suppression(engine, account=f"{prefix}-1")  # not imported yet
    await add_suppression(engine, phone=spelled)  # written one way here...
    national = e164[2:]
    path = tmp_path / "later.csv"
    path.write_text(  # ...and another way in the list file
        "account,wireless,email\n"
        f"{prefix}-1,{other_phone},\n"
        f"{prefix}-2,{national[:3]}.{national[3:6]}.{national[6:]},\n"
        f"{prefix}-3,{third_phone},\n"
    )
    report = await import_list(engine, path, prefix)
    assert report.imported == 3
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                """
                SELECT c.account_key,
                       EXISTS (SELECT 1 FROM suppressions su WHERE su.value = c.account_key
                               AND su.kind = 'account' AND su.campaign_id IS NULL),
                       bool_or(EXISTS (SELECT 1 FROM suppressions su WHERE su.value = d.value
                               AND su.kind <> 'account' AND su.campaign_id IS NULL))
                FROM contacts c JOIN devices d ON d.contact_id = c.id
                WHERE c.account_key LIKE :p GROUP BY c.account_key ORDER BY c.account_key
                """
            ),
            {"p": f"{prefix}-%"},
        )
        found = [tuple(row) for row in rows]
    assert found == [
        (f"{prefix}-1", True, False),
        (f"{prefix}-2", False, True),
        (f"{prefix}-3", False, False),
    ]


# -- import ----------------------------------------------------------------------------------


async def test_import_adds_every_target_and_counts_what_was_there(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    key = unique("acc")
    phone1, e1 = fresh_phone()
    phone2, e2 = fresh_phone()
    address = fresh_email()
    await add_suppression(engine, phone=phone2, campaign=campaign, reason="earlier")
    path = tmp_path / "dnc.csv"
    rows = [
        "Account;Phone;EMAIL;reason;note",
        f"{key};;;;the account only",
        f";{phone1};{address};legal_hold;a phone and an e-mail",
        f";{phone2};;;already suppressed in the campaign",
        "",
        f"{key};{e1};;;both again: duplicates in the file",
    ]
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode())

    report = await import_suppressions(engine, path, campaign=campaign, reason="opt_out")

    assert report.rows == 4
    assert report.added == {"account": 1, "phone": 1, "email": 1}
    assert report.already_present == {"account": 0, "phone": 1, "email": 0}
    assert report.duplicates_in_file == 2
    assert report.ignored_columns == ["note"]
    assert import_summary(report)[0].endswith(
        f"3 suppressions added for campaign {campaign!r}, 1 already present"
    )
    page = await list_suppressions(engine, campaign=campaign)
    assert page.total == 4
    assert {(row.kind, row.value, row.reason) for row in page.rows} == {
        ("account", key, "opt_out"),
        ("phone", e1, "legal_hold"),
        ("email", address.lower(), "legal_hold"),
        ("phone", e2, "earlier"),
    }
    assert await stored(engine, key) == [(campaign, "account", "opt_out")]

    again = await import_suppressions(engine, path, campaign=campaign)
    assert again.added == {"account": 0, "phone": 0, "email": 0}
    assert again.already_present == {"account": 1, "phone": 2, "email": 1}


async def test_import_with_bad_rows_lists_each_and_writes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    good_key = unique("acc")
    good_phone, good_e164 = fresh_phone()
    path = tmp_path / "bad.csv"
    path.write_text(
        "account,phone,email,reason\n"  # line 1
        f"{good_key},{good_phone},,\n"  # 2: fine
        ",555-01,,\n"  # 3: bad phone
        f",,{fresh_email()},\n"  # 4: fine
        ",,not-an-address,\n"  # 5: bad e-mail
        ",,,opt_out\n"  # 6: nothing filled
        "=cmd|' /C calc'!A0,,,\n"  # 7: formula-like account
        f"{unique('acc')},,,{'x' * 40}\n"  # 8: reason too long
        f"{unique('acc')},,\n"  # 9: a column short
        ",12,bad@,\n"  # 10: two bad cells
    )
    with pytest.raises(SuppressionImportError) as caught:
        await import_suppressions(engine, path, campaign=campaign)

    error = caught.value
    assert str(error).splitlines() == [
        f"{path}: 7 bad rows, nothing imported:",
        f"  {path}:3: phone: not a valid phone number",
        f"  {path}:5: email: not a valid e-mail address",
        f"  {path}:6: no target filled in (account, phone, email)",
        f"  {path}:7: account: formula-like text (starts with =, +, - or @): CSV injection risk",
        f"  {path}:8: reason: reason longer than 32 characters",
        f"  {path}:9: 3 columns where the header has 4",
        f"  {path}:10: phone: not a valid phone number",
        f"  {path}:10: email: not a valid e-mail address",
    ]
    assert [problem.line for problem in error.problems] == [3, 5, 6, 7, 8, 9, 10, 10]
    assert (await list_suppressions(engine, campaign=campaign)).total == 0
    assert await stored(engine, good_key) == []
    assert await stored(engine, good_e164) == []


async def test_import_error_lists_at_most_twenty_problems(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    path = tmp_path / "many.csv"
    path.write_text("phone\n" + "not a number\n" * 25)
    with pytest.raises(SuppressionImportError) as caught:
        await import_suppressions(engine, path, campaign=campaign)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 25 bad rows, nothing imported:"
    assert len(lines) == 1 + MAX_LISTED_PROBLEMS + 1
    assert lines[-2] == f"  {path}:21: phone: not a phone number"
    assert lines[-1] == "  ... and 5 more problems"
    assert len(caught.value.problems) == 25


async def test_import_refuses_files_it_cannot_read(engine: AsyncEngine, tmp_path: Path) -> None:
    no_targets = tmp_path / "names.csv"
    no_targets.write_text("name,mobile\nAda,4155550100\n")
    with pytest.raises(SuppressionError, match="names none of the columns account, phone, email"):
        await import_suppressions(engine, no_targets)
    twice = tmp_path / "twice.csv"
    twice.write_text("phone,Phone\n4155550100,4155550101\n")
    with pytest.raises(SuppressionError, match="'phone' appears twice"):
        await import_suppressions(engine, twice)
    with pytest.raises(SuppressionError, match="no such file"):
        await import_suppressions(engine, tmp_path / "missing.csv")
    with pytest.raises(SuppressionError, match="unknown campaign"):
        await import_suppressions(engine, twice, campaign=unique("nope"))


# -- listing ---------------------------------------------------------------------------------


async def test_list_filters_scope_kind_reason_and_limit(engine: AsyncEngine) -> None:
    campaign = await new_campaign(engine)
    key = unique("acc")
    phones = [fresh_phone()[1] for _ in range(3)]
    address = fresh_email()
    ids = [
        await add_suppression(engine, account=key, campaign=campaign, reason="legal_hold"),
        *[await add_suppression(engine, phone=p, campaign=campaign) for p in phones],
        await add_suppression(engine, email=address, campaign=campaign, reason="hard_bounce"),
    ]
    global_id = await add_suppression(engine, account=key, reason="deceased")

    everything = await list_suppressions(engine, campaign=campaign)
    assert everything.total == 5
    assert [row.id for row in everything.rows] == ids[::-1]  # newest first
    assert {row.campaign for row in everything.rows} == {campaign}

    assert (await list_suppressions(engine, campaign=campaign, kind="phone")).total == 3
    bounced = await list_suppressions(engine, campaign=campaign, reason="hard_bounce")
    assert [(row.kind, row.value) for row in bounced.rows] == [("email", address.lower())]
    limited = await list_suppressions(engine, campaign=campaign, limit=2)
    assert (limited.total, [row.id for row in limited.rows]) == (5, ids[:2:-1])

    global_ones = await list_suppressions(engine, only_global=True, kind="account", value=key)
    assert [(row.id, row.campaign, row.reason) for row in global_ones.rows] == [
        (global_id, None, "deceased")
    ]
    assert (await list_suppressions(engine, kind="account", value=key)).total == 2
    assert (await list_suppressions(engine, campaign=campaign, reason="nothing")).total == 0
    with pytest.raises(SuppressionError, match="unknown kind 'sms'"):
        await list_suppressions(engine, kind="sms")
    with pytest.raises(SuppressionError, match="at least 1"):
        await list_suppressions(engine, limit=0)


# -- inbound SMS -----------------------------------------------------------------------------

OPT_OUTS = [
    "STOP",
    " stop. ",
    "Stop!",
    "stopall",
    "UNSUBSCRIBE",
    "cancel",
    "End",
    "quit\n",
    "«STOP»",
]
NOT_OPT_OUTS = ["please stop calling", "stop it", "STOP STOP", "stopp", "s.t.o.p", "", "  ", "YES"]


@pytest.mark.parametrize("message", OPT_OUTS)
def test_opt_out_keywords(message: str) -> None:
    assert is_opt_out(message)


@pytest.mark.parametrize("message", NOT_OPT_OUTS)
def test_not_opt_out(message: str) -> None:
    """Only the bare keyword opts out: a sentence containing it may be about anything."""
    assert not is_opt_out(message)


async def test_receive_sms_suppresses_the_sender_everywhere_on_stop(engine: AsyncEngine) -> None:
    stopping, stopping_e164 = fresh_phone()
    chatting, chatting_e164 = fresh_phone()

    assert await receive_sms(engine, stopping, " stop. ") is True
    assert await receive_sms(engine, chatting, "please stop calling") is False
    assert await receive_sms(engine, stopping_e164, "STOP") is True  # again: still one row

    assert await stored(engine, stopping_e164) == [(None, "phone", STOP_REPLY)]
    assert await stored(engine, chatting_e164) == []
    with pytest.raises(SuppressionError, match="not a valid phone number"):
        await receive_sms(engine, "12345", "STOP")


# -- the command line ------------------------------------------------------------------------


async def csm(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run, [*CSM, *args], capture_output=True, text=True, timeout=60, env=env
    )


async def test_cli_add_list_remove_and_inbound(engine: AsyncEngine, database_url: str) -> None:
    campaign = await new_campaign(engine)
    spelled, e164 = fresh_phone()
    key = unique("acc")

    added = await csm(
        "suppress", "add", "--phone", spelled, "--campaign", campaign, database_url=database_url
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("suppression ")
    assert f"phone {e164} suppressed in campaign {campaign!r} (do_not_contact)" in added.stdout
    again, account = await asyncio.gather(
        csm("suppress", "add", "--phone", e164, "--campaign", campaign, database_url=database_url),
        csm(
            "suppress",
            "add",
            "--account",
            key,
            "--campaign",
            campaign,
            "--reason",
            "legal_hold",
            database_url=database_url,
        ),
    )
    assert "was already suppressed" in again.stdout, again.stderr
    assert account.returncode == 0, account.stderr

    listed = await csm(
        "suppress", "list", "--campaign", campaign, "--json", database_url=database_url
    )
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["total"] == 2
    assert [(s["kind"], s["value"], s["reason"]) for s in shown["suppressions"]] == [
        ("account", key, "legal_hold"),
        ("phone", e164, "do_not_contact"),
    ]
    table = await csm(
        "suppress", "list", "--campaign", campaign, "--kind", "phone", database_url=database_url
    )
    assert e164 in table.stdout and key not in table.stdout
    assert "1 of 1 shown" in table.stdout

    missing = await csm("suppress", "remove", "--phone", spelled, database_url=database_url)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "csm: error: nothing removed: that target is not suppressed in every campaign "
        f"(it is in campaign {campaign!r}: use --campaign or --every-scope)"
    )
    removed = await csm(
        "suppress", "remove", "--phone", spelled, "--campaign", campaign, database_url=database_url
    )
    assert removed.stdout.strip() == "1 suppression removed", removed.stderr
    by_id = await csm(
        "suppress", "remove", str(shown["suppressions"][0]["id"]), database_url=database_url
    )
    assert by_id.stdout.startswith(f"suppression {shown['suppressions'][0]['id']} removed: account")
    assert (await list_suppressions(engine, campaign=campaign)).total == 0

    stop, chat = await asyncio.gather(
        csm("inbound", "sms", spelled, "Stop", database_url=database_url),
        csm("inbound", "sms", fresh_phone()[0], "stop calling me", database_url=database_url),
    )
    assert stop.stdout.strip() == f"{e164} opted out: suppressed in every campaign (stop_reply)"
    assert chat.returncode == 0 and "not an opt-out keyword" in chat.stdout
    assert await stored(engine, e164) == [(None, "phone", STOP_REPLY)]

    bad = await csm("suppress", "add", "--phone", "12", database_url=database_url)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "csm: error: phone '12': not a valid phone number"


async def test_cli_import_reports_or_rejects(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    campaign = await new_campaign(engine)
    good = tmp_path / "good.csv"
    address = fresh_email()
    good.write_text(f"email\n{address}\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"email,phone\n{fresh_email()},\nnope,\n,(617) 000-0000\n")

    rejected = await csm(
        "suppress", "import", str(bad), "--campaign", campaign, database_url=database_url
    )
    assert rejected.returncode == 1
    assert rejected.stdout == ""
    assert rejected.stderr.splitlines() == [
        f"csm: error: {bad}: 2 bad rows, nothing imported:",
        f"  {bad}:3: email: not a valid e-mail address",
        f"  {bad}:4: phone: not a valid phone number",
    ]
    assert (await list_suppressions(engine, campaign=campaign)).total == 0

    imported = await csm(
        "suppress", "import", str(good), "--campaign", campaign, "--json", database_url=database_url
    )
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert report["added"] == {"email": 1} and report["rows"] == 1
    assert await stored(engine, address.lower()) == [(campaign, "email", "do_not_contact")]
