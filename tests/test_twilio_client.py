"""The Twilio REST client against a real HTTP server answering like Twilio.

The server is tests/twilio_stub.py until the local carrier lands (then: the carrier).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import date

import pytest

from csm.providers.twilio import protocol
from csm.providers.twilio.client import (
    ConfigurationError,
    Refused,
    TwilioClient,
    Unreachable,
    Unsure,
)
from csm.testing.servers import free_port
from tests.twilio_stub import SID, TOKEN, Scripted, Stub, twilio_stub

TO = "+15005550001"  # Twilio's documented test numbers, no one's phone
FROM = "+15005550006"


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    async with twilio_stub() as stub:
        yield stub


@pytest.fixture
async def client(stub: Stub) -> AsyncIterator[TwilioClient]:
    client = TwilioClient(stub.url, SID, TOKEN, timeout=0.5)
    yield client
    await client.close()


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


async def call(client: TwilioClient, key: str, deadline: float) -> object:
    url = protocol.callback_url("http://hooks.invalid", protocol.VOICE_STATUS_PATH, key)
    return await client.create_call(
        to=TO, from_=FROM, url=url, status_callback=url, deadline=deadline
    )


async def test_a_429_is_retried_until_the_carrier_takes_the_call(
    stub: Stub, client: TwilioClient
) -> None:
    stub.script.extend([Scripted(429, 20429), Scripted(429, 20429)])
    resource = await call(client, "1-20260101-1-1-1-0", soon())
    assert resource.sid.startswith("CA") and resource.status == "queued"  # type: ignore[attr-defined]
    assert stub.post_tries == 3
    assert stub.posts["1-20260101-1-1-1-0"] == 1


async def test_5xx_past_the_deadline_is_unreachable_and_nothing_was_placed(
    stub: Stub, client: TwilioClient
) -> None:
    stub.script.extend(Scripted(503) for _ in range(100))
    with pytest.raises(Unreachable, match="HTTP 503") as raised:
        await call(client, "1-20260101-1-1-2-0", soon(0.5))
    assert isinstance(raised.value, ConnectionError)  # the pass's outage loop catches it
    assert 1 <= stub.post_tries < 100
    assert not stub.posts


async def test_a_carrier_not_listening_is_unreachable() -> None:
    client = TwilioClient(f"http://127.0.0.1:{free_port()}", SID, TOKEN)
    try:
        with pytest.raises(Unreachable, match="ConnectError"):
            await call(client, "1-20260101-1-1-3-0", soon(0.5))
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("code", "channel", "result"),
    [
        (21211, "voice", "bad_device"),
        (21211, "sms", "bad_device"),
        (21610, "sms", "opted_out"),
        (21215, "voice", "bad_device"),
        (21603, "voice", "not_connected"),
    ],
)
async def test_a_refused_post_is_not_retried_and_maps_to_a_result(
    stub: Stub, client: TwilioClient, code: int, channel: str, result: str
) -> None:
    stub.script.append(Scripted(400, code))
    with pytest.raises(Refused) as raised:
        if channel == "sms":
            await client.create_message(
                to=TO,
                from_=FROM,
                body="hello",
                status_callback="http://h.invalid/",
                deadline=soon(),
            )
        else:
            await call(client, "1-20260101-1-1-4-0", soon())
    assert (raised.value.code, raised.value.status) == (str(code), 400)
    assert protocol.refused_result(channel, raised.value.code) == result
    assert stub.post_tries == 1
    assert TO not in str(raised.value)


async def test_a_wrong_token_is_a_configuration_error_naming_the_setting(stub: Stub) -> None:
    client = TwilioClient(stub.url, SID, "not-the-token")
    try:
        with pytest.raises(ConfigurationError, match="CSM_TWILIO_AUTH_TOKEN") as raised:
            await call(client, "1-20260101-1-1-5-0", soon())
        assert "401" in str(raised.value)
    finally:
        await client.close()


async def test_an_unknown_account_is_a_configuration_error(stub: Stub) -> None:
    client = TwilioClient(stub.url, "ACnobody", TOKEN)
    try:
        with pytest.raises(ConfigurationError, match="CSM_TWILIO_ACCOUNT_SID"):
            await call(client, "1-20260101-1-1-6-0", soon())
    finally:
        await client.close()


async def test_a_post_whose_answer_is_lost_is_unsure_and_never_repeated(stub: Stub) -> None:
    stub.script.append(Scripted(201, delay=1.0, create=True))
    client = TwilioClient(stub.url, SID, TOKEN, timeout=0.3)
    try:
        with pytest.raises(Unsure):
            await call(client, "1-20260101-1-1-7-0", soon())
    finally:
        await client.close()
    assert stub.post_tries == 1


async def test_lookups_by_sid_and_by_list(stub: Stub, client: TwilioClient) -> None:
    placed = await call(client, "1-20260101-1-1-8-0", soon())
    sid = placed.sid  # type: ignore[attr-defined]
    stub.resources[sid].update(status="completed", answered_by="machine_end_beep")
    found = await client.fetch_call(sid, deadline=soon())
    assert found is not None
    assert (found.status, found.answered_by, found.error_code) == (
        "completed",
        "machine_end_beep",
        None,
    )
    assert found.created is not None and found.created.tzinfo is not None
    assert await client.fetch_call("CA" + "0" * 32, deadline=soon()) is None
    listed = await client.find_calls(to=TO, from_=FROM, since=date(2026, 1, 1), deadline=soon())
    assert [r.sid for r in listed] == [sid]
    assert stub.list_queries[-1] == {
        "To": TO,
        "From": FROM,
        "StartTime>=": "2026-01-01",
        "PageSize": "100",
    }
    assert (
        await client.find_messages(to=TO, from_=FROM, since=date(2026, 1, 1), deadline=soon()) == []
    )
    assert stub.list_queries[-1]["DateSent>="] == "2026-01-01"
