"""The webhook receiver (csm.webhooks) against real PostgreSQL, over HTTP as the carrier sends.

Requests are signed with csm.providers.twilio.signature.sign over the public URL the
carrier was given (CSM_PUBLIC_URL, here an https address unlike the test client's),
as the local carrier signs them; one test holds the receiver against the official
`twilio` package's validator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from csm.database import driver_connection
from csm.providers.twilio.protocol import (
    SMS_INBOUND_PATH,
    SMS_STATUS_PATH,
    VOICE_ANSWER_PATH,
    VOICE_STATUS_PATH,
    callback_url,
)
from csm.providers.twilio.signature import sign
from csm.settings import Settings
from csm.suppressions import STOP_REPLY, list_suppressions
from csm.testing.servers import free_port
from csm.web.app import create_app as create_web_app
from csm.web.auth import COOKIE
from csm.web.auth import sign as sign_session
from csm.webhooks import create_app, mount, orphan_count

TOKEN = "receiver-test-token-" + uuid.uuid4().hex
PUBLIC = "https://hooks.example.test/csm"
ACCOUNT = "ACtest0000000000000000000000000000"
FORM = {"content-type": "application/x-www-form-urlencoded"}
_RNG = random.Random()


def receiver_settings(database_url: str, public_url: str = PUBLIC) -> Settings:
    return Settings(
        database_url=database_url,
        public_url=public_url,
        twilio_auth_token=TOKEN,
        twilio_account_sid=ACCOUNT,
        _env_file=None,
    )


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return receiver_settings(database_url)


@pytest.fixture
async def http(settings: Settings, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """The receiver alone; the answer URL waits 0.3 s for an agent decision, not 5 s."""
    app = create_app(settings, engine, answer_wait_s=0.3)
    async with client_for(app) as client:
        yield client


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver")


def fresh_key() -> str:
    return f"9{_RNG.randrange(10**6)}-20261203-1-{_RNG.randrange(10**9)}-1-1"


def fresh_phone() -> str:
    """A (508) number no other test uses (synthetic lists and test_suppressions use others)."""
    return f"+1508{_RNG.randrange(200, 1000)}{_RNG.randrange(10000):04d}"


def fresh_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


async def post(
    http: httpx.AsyncClient,
    path: str,
    params: Mapping[str, str],
    *,
    key: str | None = None,
    token: str = TOKEN,
    signed: bool = True,
    signed_url: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST a form as the carrier does: to the path (+ ?key=K), signed over the public URL."""
    public = callback_url(PUBLIC, path, key)
    parts = urlsplit(public)
    sent = {**FORM, **(headers or {})}
    if signed:
        sent["X-Twilio-Signature"] = sign(token, signed_url or public, params)
    target = path + (f"?{parts.query}" if parts.query else "")
    return await http.post(target, content=urlencode(params), headers=sent)


async def add_attempt(
    engine: AsyncEngine,
    key: str,
    *,
    channel: str = "voice",
    bridge: bool = False,
    message: str | None = None,
    connect_to: str | None = None,
) -> None:
    async with driver_connection(engine) as connection:
        await connection.execute(
            "INSERT INTO provider_attempts"
            " (attempt_key, sub_campaign_id, channel, provider, state, bridge, message, connect_to)"
            " VALUES ($1, $6, $2, 'twilio', 'placed', $3, $4, $5)",
            key,
            channel,
            bridge,
            message,
            connect_to,
            int(key.split("-", 1)[0]),  # the key's own sub-campaign, as the adapter stores it
        )


async def attempt_row(engine: AsyncEngine, key: str) -> dict[str, Any]:
    async with driver_connection(engine) as connection:
        row = await connection.fetchrow(
            "SELECT sid, status, status_rank, answered_by, error_code FROM provider_attempts"
            " WHERE attempt_key = $1",
            key,
        )
    assert row is not None
    return dict(row)


async def events_of(engine: AsyncEngine, key: str) -> list[tuple[str, str | None, bool]]:
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT kind, status, changed FROM provider_events WHERE attempt_key = $1 ORDER BY id",
            key,
        )
    return [(row["kind"], row["status"], row["changed"]) for row in rows]


async def orphans_of(engine: AsyncEngine, sid: str) -> list[tuple[str, str | None, str | None]]:
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT kind, attempt_key, status FROM provider_orphans WHERE sid = $1", sid
        )
    return [(row["kind"], row["attempt_key"], row["status"]) for row in rows]


def call_status(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": ACCOUNT,
        "CallStatus": status,
        "To": "+13125550100",
        "From": "+15005550006",
        **extra,
    }


UNTOUCHED = {"sid": None, "status": None, "status_rank": 0, "answered_by": None, "error_code": None}


# ---- signature, size, shape ---------------------------------------------------------------


async def test_unsigned_or_wrongly_signed_callbacks_are_refused_and_write_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key)
    orphans_before = await orphan_count(engine)
    form = call_status(sid, "completed", AnsweredBy="human")
    other_key_url = callback_url(PUBLIC, VOICE_STATUS_PATH, fresh_key())
    local_url = f"http://receiver{VOICE_STATUS_PATH}?key={key}"  # not the public URL

    refusals = [
        await post(http, VOICE_STATUS_PATH, form, key=key, signed=False),
        await post(http, VOICE_STATUS_PATH, form, key=key, token="not-" + TOKEN),
        await post(http, VOICE_STATUS_PATH, form, key=key, signed_url=other_key_url),
        await post(http, VOICE_STATUS_PATH, form, key=key, signed_url=local_url),
        await post(http, VOICE_STATUS_PATH, form, key=None, signed=False),  # would be an orphan
        await post(
            http,
            SMS_INBOUND_PATH,
            {"MessageSid": fresh_sid("SM"), "Body": "STOP", "From": fresh_phone()},
            signed=False,
        ),
    ]

    assert [response.status_code for response in refusals] == [403] * len(refusals)
    assert "signature" in refusals[0].text
    assert await attempt_row(engine, key) == UNTOUCHED
    assert await events_of(engine, key) == []
    assert await orphan_count(engine) == orphans_before
    # and signed, the same callback goes through
    accepted = await post(http, VOICE_STATUS_PATH, form, key=key)
    assert accepted.status_code == 200
    assert (await attempt_row(engine, key))["status"] == "completed"


async def test_a_body_over_64_kib_is_refused_with_413(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = fresh_key()
    await add_attempt(engine, key)
    form = call_status(fresh_sid("CA"), "ringing", Padding="x" * (64 * 1024))
    response = await post(http, VOICE_STATUS_PATH, form, key=key)
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b"CallSid=CA1&CallStatus=ringing&Padding="
        for _ in range(65):
            yield b"x" * 1024

    streamed = await http.post(f"{VOICE_STATUS_PATH}?key={key}", content=chunks(), headers=FORM)
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert await attempt_row(engine, key) == UNTOUCHED


@pytest.mark.parametrize(
    ("content", "headers", "reason"),
    [
        (
            json.dumps({"CallSid": "CA1", "CallStatus": "ringing"}),
            {"content-type": "application/json"},
            "not a form",
        ),
        ("CallSid=CA1&CallStatus", FORM, "not a well-formed form"),
        ("CallSid=CA1&CallStatus=%FF", FORM, "not a well-formed form"),
    ],
)
async def test_a_body_that_is_not_a_form_is_refused_with_400(
    http: httpx.AsyncClient, content: str, headers: dict[str, str], reason: str
) -> None:
    response = await http.post(VOICE_STATUS_PATH + "?key=k", content=content, headers=headers)
    assert response.status_code == 400
    assert reason in response.text


@pytest.mark.parametrize(
    ("path", "form", "reason"),
    [
        (VOICE_STATUS_PATH, {"CallSid": "CA1"}, "CallStatus is missing"),
        (VOICE_STATUS_PATH, {"CallStatus": "ringing"}, "CallSid is missing"),
        (
            VOICE_STATUS_PATH,
            {"CallSid": "CA1", "CallStatus": "exploded"},
            "CallStatus is not a status",
        ),
        (
            VOICE_STATUS_PATH,
            {"CallSid": "CA1", "CallStatus": "delivered"},
            "CallStatus is not a status",
        ),
        (
            VOICE_STATUS_PATH,
            {"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "robot"},
            "AnsweredBy",
        ),
        (
            VOICE_STATUS_PATH,
            {"CallSid": "CA1", "CallStatus": "failed", "ErrorCode": "12ab"},
            "ErrorCode is not a number",
        ),
        (
            SMS_STATUS_PATH,
            {"MessageSid": "SM1", "MessageStatus": "completed"},
            "MessageStatus is not a status",
        ),
        (SMS_STATUS_PATH, {"MessageSid": "SM1"}, "MessageStatus is missing"),
        (VOICE_ANSWER_PATH, {"CallStatus": "in-progress"}, "CallSid is missing"),
        (SMS_INBOUND_PATH, {"MessageSid": "SM1", "Body": "STOP"}, "From is missing"),
        (
            SMS_INBOUND_PATH,
            {"MessageSid": "SM1", "From": "12345", "Body": "STOP"},
            "From is not a phone number",
        ),
    ],
)
async def test_a_signed_form_missing_a_field_or_with_an_unknown_word_is_refused_with_400(
    http: httpx.AsyncClient, engine: AsyncEngine, path: str, form: dict[str, str], reason: str
) -> None:
    key = fresh_key()
    await add_attempt(engine, key, channel="sms" if "sms" in path else "voice")
    orphans_before = await orphan_count(engine)
    response = await post(http, path, form, key=None if path == SMS_INBOUND_PATH else key)
    assert response.status_code == 400
    assert reason in response.text
    assert form.get("From", "<no sender>") not in response.text  # a reason names no value
    assert await attempt_row(engine, key) == UNTOUCHED
    assert await orphan_count(engine) == orphans_before


# ---- status callbacks ------------------------------------------------------------------------


async def test_the_same_callback_twice_changes_the_attempt_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key)
    for _ in range(2):
        response = await post(http, VOICE_STATUS_PATH, call_status(sid, "ringing"), key=key)
        assert response.status_code == 200
    assert await events_of(engine, key) == [
        ("voice_status", "ringing", True),
        ("voice_status", "ringing", False),
    ]
    assert await attempt_row(engine, key) == {
        **UNTOUCHED,
        "sid": sid,
        "status": "ringing",
        "status_rank": 3,
    }


async def test_a_status_after_a_final_one_changes_nothing_and_the_final_one_fills_codes(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key)
    final = call_status(sid, "completed", AnsweredBy="machine_end_beep", CallDuration="31")
    for status, form in [
        ("completed", final),
        ("ringing", call_status(sid, "ringing")),
        ("busy", call_status(sid, "busy")),
    ]:
        response = await post(http, VOICE_STATUS_PATH, form, key=key)
        assert response.status_code == 200, status
    assert await events_of(engine, key) == [
        ("voice_status", "completed", True),
        ("voice_status", "ringing", False),
        ("voice_status", "busy", False),  # the first final status wins
    ]
    assert await attempt_row(engine, key) == {
        "sid": sid,
        "status": "completed",
        "status_rank": 9,
        "answered_by": "machine_end_beep",
        "error_code": None,
    }


async def test_a_failed_call_and_an_undelivered_message_keep_their_error_codes(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    call_key, call_sid = fresh_key(), fresh_sid("CA")
    text_key, text_sid = fresh_key(), fresh_sid("SM")
    await add_attempt(engine, call_key)
    await add_attempt(engine, text_key, channel="sms")
    await post(http, VOICE_STATUS_PATH, call_status(call_sid, "ringing"), key=call_key)
    await post(
        http, VOICE_STATUS_PATH, call_status(call_sid, "failed", ErrorCode="13224"), key=call_key
    )
    for status, extra in [
        ("queued", {}),
        ("sent", {}),
        ("undelivered", {"ErrorCode": "30003"}),
        ("sending", {}),
    ]:
        form = {"MessageSid": text_sid, "AccountSid": ACCOUNT, "MessageStatus": status, **extra}
        assert (await post(http, SMS_STATUS_PATH, form, key=text_key)).status_code == 200
    assert await attempt_row(engine, call_key) == {
        "sid": call_sid,
        "status": "failed",
        "status_rank": 9,
        "answered_by": None,
        "error_code": "13224",
    }
    assert await attempt_row(engine, text_key) == {
        "sid": text_sid,
        "status": "undelivered",
        "status_rank": 9,
        "answered_by": None,
        "error_code": "30003",
    }
    assert [changed for _, _, changed in await events_of(engine, text_key)] == [
        True,
        True,
        True,
        False,
    ]


async def test_callbacks_that_match_no_attempt_are_kept_as_orphans_counted_and_acknowledged(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await orphan_count(engine)
    unknown_key, unknown_sid, keyless_sid = fresh_key(), fresh_sid("CA"), fresh_sid("SM")
    by_key = await post(
        http, VOICE_STATUS_PATH, call_status(unknown_sid, "completed"), key=unknown_key
    )
    keyless = await post(
        http, SMS_STATUS_PATH, {"MessageSid": keyless_sid, "MessageStatus": "delivered"}
    )
    assert (by_key.status_code, keyless.status_code) == (200, 200)
    assert await orphans_of(engine, unknown_sid) == [("voice_status", unknown_key, "completed")]
    assert await orphans_of(engine, keyless_sid) == [("sms_status", None, "delivered")]
    assert await orphan_count(engine) == before + 2
    health = await http.get("/twilio/health")
    assert health.status_code == 200
    counted = health.json()
    assert set(counted) == {"orphans", "events"}
    assert counted["orphans"] >= before + 2


# ---- the answer URL ----------------------------------------------------------------------------


def answer_form(sid: str, answered_by: str | None = "human") -> dict[str, str]:
    form = {
        "CallSid": sid,
        "AccountSid": ACCOUNT,
        "CallStatus": "in-progress",
        "To": "+13125550100",
        "From": "+15005550006",
    }
    if answered_by is not None:
        form["AnsweredBy"] = answered_by
    return form


async def answer(
    http: httpx.AsyncClient, key: str, sid: str, answered_by: str | None = "human"
) -> str:
    response = await post(http, VOICE_ANSWER_PATH, answer_form(sid, answered_by), key=key)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return response.text


async def test_the_answer_url_of_a_pass_without_agents_says_its_message_to_person_or_machine(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key, message="Your bill is due <today> & tomorrow")
    assert await answer(http, key, sid, "machine_end_beep") == (
        "<Response><Say>Your bill is due &lt;today&gt; &amp; tomorrow</Say></Response>"
    )
    assert await attempt_row(engine, key) == {
        **UNTOUCHED,
        "sid": sid,
        "status": "in-progress",
        "status_rank": 4,
        "answered_by": "machine_end_beep",
    }
    assert await events_of(engine, key) == [("voice_answer", "in-progress", True)]

    silent = fresh_key()
    await add_attempt(engine, silent, message=None)
    assert await answer(http, silent, fresh_sid("CA")) == "<Response><Hangup/></Response>"


async def test_the_answer_url_of_a_bridged_pass_says_the_message_to_a_machine(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key = fresh_key()
    await add_attempt(engine, key, bridge=True, message="Please call us back")
    assert await answer(http, key, fresh_sid("CA"), "machine_end_silence") == (
        "<Response><Say>Please call us back</Say></Response>"
    )


async def test_a_bridged_live_answer_waits_for_the_agent_and_dials_it(
    settings: Settings, engine: AsyncEngine
) -> None:
    """The worker writes connect_to while the answer URL waits: the call is dialled to it."""
    app = create_app(settings, engine, answer_wait_s=30)  # decided long before that
    sip_key, number_key = fresh_key(), fresh_key()
    await add_attempt(engine, sip_key, bridge=True, message="m")
    await add_attempt(engine, number_key, bridge=True, connect_to="+13125550199")

    async def decide() -> None:
        await asyncio.sleep(0.2)
        async with driver_connection(engine) as connection:
            await connection.execute(
                "UPDATE provider_attempts SET connect_to = 'sip:sales@agents.invalid'"
                " WHERE attempt_key = $1",
                sip_key,
            )

    async with client_for(app) as http:
        sip_twiml, _ = await asyncio.gather(answer(http, sip_key, fresh_sid("CA")), decide())
        number_twiml = await answer(http, number_key, fresh_sid("CA"), answered_by="unknown")
    assert sip_twiml == "<Response><Dial><Sip>sip:sales@agents.invalid</Sip></Dial></Response>"
    assert number_twiml == "<Response><Dial>+13125550199</Dial></Response>"


async def test_a_bridged_live_answer_with_no_free_agent_hears_the_message_then_hangs_up(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, bare = fresh_key(), fresh_key()
    await add_attempt(engine, key, bridge=True, message="Sorry we missed you", connect_to="")
    await add_attempt(engine, bare, bridge=True, connect_to="")
    assert await answer(http, key, fresh_sid("CA")) == (
        "<Response><Say>Sorry we missed you</Say><Hangup/></Response>"
    )
    assert await answer(http, bare, fresh_sid("CA")) == "<Response><Hangup/></Response>"


async def test_the_message_is_dropped_when_the_call_ends_and_kept_until_then(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A bridged answer no agent took keeps its message for the answer URL; once the call's
    final status comes nothing will speak it, and the receiver drops it (personal data)."""
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key, bridge=True, message="Sorry we missed you", connect_to="")

    async def message() -> str | None:
        async with driver_connection(engine) as connection:
            return await connection.fetchval(
                "SELECT message FROM provider_attempts WHERE attempt_key = $1", key
            )

    assert (await post(http, VOICE_STATUS_PATH, call_status(sid, "ringing"), key=key)).is_success
    assert await message() == "Sorry we missed you"
    done = call_status(sid, "completed", AnsweredBy="human")
    assert (await post(http, VOICE_STATUS_PATH, done, key=key)).is_success
    assert await message() is None


async def test_an_undecided_bridged_live_answer_is_redirected_to_the_same_url_after_the_wait(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key, bridge=True, message="m")
    first = await answer(http, key, sid)
    again = await answer(http, key, sid)  # the carrier follows the Redirect
    url = callback_url(PUBLIC, VOICE_ANSWER_PATH, key)
    expected = f'<Response><Pause length="1"/><Redirect method="POST">{url}</Redirect></Response>'
    assert "&" not in url  # nothing to escape in this URL
    assert first == again == expected
    assert await events_of(engine, key) == [
        ("voice_answer", "in-progress", True),
        ("voice_answer", "in-progress", False),
    ]


async def test_an_answer_for_no_attempt_hangs_up_and_is_an_orphan(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    assert await answer(http, key, sid) == "<Response><Hangup/></Response>"
    assert await orphans_of(engine, sid) == [("voice_answer", key, "in-progress")]


# ---- inbound texts -----------------------------------------------------------------------------


async def inbound_count(engine: AsyncEngine, sid: str) -> list[tuple[str, bool]]:
    async with driver_connection(engine) as connection:
        rows = await connection.fetch(
            "SELECT provider, opted_out FROM inbound_messages WHERE sid = $1", sid
        )
    return [(row["provider"], row["opted_out"]) for row in rows]


async def suppressed(engine: AsyncEngine, phone: str) -> list[tuple[str | None, str]]:
    page = await list_suppressions(engine, kind="phone", value=phone)
    return [(row.campaign, row.reason) for row in page.rows]


async def test_an_inbound_stop_suppresses_the_sender_everywhere_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    phone, sid = fresh_phone(), fresh_sid("SM")
    form = {
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": phone,
        "To": "+15005550006",
        "Body": " Stop. ",
    }
    first = await post(http, SMS_INBOUND_PATH, form)
    assert first.status_code == 200
    assert first.text == "<Response/>"
    assert await suppressed(engine, phone) == [(None, STOP_REPLY)]
    assert await inbound_count(engine, sid) == [("twilio", True)]

    # the carrier repeats the webhook: nothing changes (one message, one suppression)
    assert (await post(http, SMS_INBOUND_PATH, form)).status_code == 200
    assert await inbound_count(engine, sid) == [("twilio", True)]
    assert await suppressed(engine, phone) == [(None, STOP_REPLY)]


async def test_an_inbound_text_that_is_no_opt_out_is_recorded_and_suppresses_nothing(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    phone, sid = fresh_phone(), fresh_sid("SM")
    form = {"MessageSid": sid, "From": phone, "To": "+15005550006", "Body": "please stop calling"}
    assert (await post(http, SMS_INBOUND_PATH, form)).status_code == 200
    assert await inbound_count(engine, sid) == [("twilio", False)]
    assert await suppressed(engine, phone) == []


async def test_the_receiver_never_logs_a_number_or_a_message(
    http: httpx.AsyncClient, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    phone, body = fresh_phone(), "STOP"
    caller = fresh_phone()
    key = fresh_key()
    await add_attempt(engine, key, message="Secret message text")
    with caplog.at_level(logging.DEBUG):
        await post(
            http, SMS_INBOUND_PATH, {"MessageSid": fresh_sid("SM"), "From": phone, "Body": body}
        )
        await post(
            http,
            SMS_INBOUND_PATH,
            {"MessageSid": fresh_sid("SM"), "From": phone + "x", "Body": "hello there"},
        )
        await post(
            http, VOICE_STATUS_PATH, call_status(fresh_sid("CA"), "ringing", To=caller), key=key
        )
        await post(http, VOICE_ANSWER_PATH, {**answer_form(fresh_sid("CA")), "To": caller}, key=key)
        await post(
            http, VOICE_STATUS_PATH, call_status(fresh_sid("CA"), "nope", To=caller), key=key
        )
        await post(
            http,
            VOICE_STATUS_PATH,
            call_status(fresh_sid("CA"), "busy", To=caller),
            key=fresh_key(),
        )
    logged = caplog.text
    assert "sms_inbound" in logged and "refused" in logged and "orphan" in logged  # it did log
    for secret in (phone, phone[2:], caller, caller[2:], "hello there", "Secret message"):
        assert secret not in logged


# ---- the official validator, `csm web` and `csm webhooks` --------------------------------------


async def test_the_official_twilio_validator_agrees_with_what_the_receiver_accepts(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key)
    form = call_status(sid, "completed", AnsweredBy="human", CallDuration="12", SequenceNumber="3")
    url = callback_url(PUBLIC, VOICE_STATUS_PATH, key)
    official = RequestValidator(TOKEN)
    ours = sign(TOKEN, url, form)
    assert official.validate(url, form, ours)

    # a request signed by the official package is one the receiver takes
    headers = {**FORM, "X-Twilio-Signature": official.compute_signature(url, form)}
    response = await http.post(
        f"{VOICE_STATUS_PATH}?key={key}", content=urlencode(form), headers=headers
    )
    assert response.status_code == 200
    assert (await attempt_row(engine, key))["status"] == "completed"
    # and one it refuses, the official package refuses too
    tampered = {**form, "AnsweredBy": "machine_start"}
    assert not official.validate(url, tampered, ours)
    assert (
        await post(http, VOICE_STATUS_PATH, tampered, key=key, signed_url=url + "x")
    ).status_code == 403


async def test_csm_web_serves_the_webhooks_without_sign_in_but_only_signed(
    settings: Settings, engine: AsyncEngine
) -> None:
    web_token = "web-" + uuid.uuid4().hex
    app = create_web_app(
        client=None,  # type: ignore[arg-type]  # the webhook routes never reach Temporal
        engine=engine,
        token=web_token,
        temporal_ui_url="http://127.0.0.1:1",
        namespace="default",
        session_hours=1,
        webhooks=mount(settings, engine),
    )
    key, sid = fresh_key(), fresh_sid("CA")
    await add_attempt(engine, key)
    async with client_for(app) as http:
        http.cookies.set(COOKIE, sign_session(web_token, "manager"))
        unsigned = await post(
            http, VOICE_STATUS_PATH, call_status(sid, "ringing"), key=key, signed=False
        )
        assert unsigned.status_code == 403  # signed in to the page is no signature
        assert await attempt_row(engine, key) == UNTOUCHED
        http.cookies.clear()
        signed = await post(http, VOICE_STATUS_PATH, call_status(sid, "ringing"), key=key)
        assert signed.status_code == 200  # no sign-in needed
        assert (await http.get("/api/sub-campaigns")).status_code == 401  # the page's API still is
    assert (await attempt_row(engine, key))["status"] == "ringing"


def test_csm_webhooks_help_says_what_to_configure() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "csm.cli", "webhooks", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "/twilio/sms/inbound" in shown.stdout
    assert "CSM_PUBLIC_URL" in shown.stdout
    assert "--port" in shown.stdout


async def test_csm_webhooks_serves_the_receiver(database_url: str, engine: AsyncEngine) -> None:
    """The command alone, over a real socket: a signed callback moves its attempt."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CSM_PUBLIC_URL": public,
        "CSM_TWILIO_AUTH_TOKEN": TOKEN,
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csm.cli",
        "webhooks",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        key, sid = fresh_key(), fresh_sid("CA")
        await add_attempt(engine, key)
        url = callback_url(public, VOICE_STATUS_PATH, key)
        form = call_status(sid, "busy")
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    health = await http.get(f"{public}/twilio/health")
                    break
                except httpx.TransportError:
                    assert server.returncode is None, await server.communicate()
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("csm webhooks did not answer in 30 s")
            assert health.status_code == 200
            response = await http.post(
                url,
                content=urlencode(form),
                headers={**FORM, "X-Twilio-Signature": sign(TOKEN, url, form)},
            )
        assert response.status_code == 200
        assert (await attempt_row(engine, key))["status"] == "busy"
    finally:
        server.terminate()
        await asyncio.wait_for(server.communicate(), 30)
