"""The Twilio adapter: placement, the outcome board, deadline lookups, settling.

Real PostgreSQL (provider_attempts) and a real HTTP server answering like Twilio
(tests/twilio_stub.py until the local carrier lands: then the carrier). The tests write
provider_attempts' status columns directly, as the webhook receiver does on callbacks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.channels.base import DECIDED, AttemptOutcome, AttemptRequest
from csm.database import driver_connection
from csm.passes.clock import Pacer
from csm.providers.twilio.adapter import TwilioProvider, TwilioSms, TwilioVoice
from csm.providers.twilio.client import TwilioClient
from csm.testing.servers import free_port
from csm.vocabulary import Channel
from tests.twilio_stub import SID, TOKEN, Scripted, Stub, twilio_stub

TO = "+15005550001"  # Twilio's documented test numbers, no one's phone
FROM = "+15005550006"
PUBLIC = "http://hooks.invalid"
CONTACTS = itertools.count(1)


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    async with twilio_stub() as stub:
        yield stub


def provider(
    kind: type[TwilioProvider],
    engine: AsyncEngine,
    url: str,
    *,
    timeout: float = 30.0,
    http_timeout: float = 5.0,
) -> TwilioProvider:
    return kind(
        engine,
        TwilioClient(url, SID, TOKEN, timeout=http_timeout),
        public_url=PUBLIC,
        from_=FROM,
        outcome_timeout=timeout,
    )


@pytest.fixture
async def voice(engine: AsyncEngine, stub: Stub) -> AsyncIterator[TwilioVoice]:
    voice = provider(TwilioVoice, engine, stub.url)
    yield voice  # type: ignore[misc]
    await voice.close()


def request(
    channel: Channel = Channel.VOICE, *, agent_group: str | None = None, message: str = "Hi Ann"
) -> AttemptRequest:
    contact = next(CONTACTS)
    return AttemptRequest(
        attempt_key=f"915-20260101-1-{contact}-{contact}-0",
        day=date(2026, 1, 1),
        pass_number=1,
        contact_id=contact,
        device_id=contact,
        try_number=0,
        device_kind="wireless",
        address=TO,
        channel=channel,
        local_hour=12,
        message=message,
        agent_group=agent_group,
    )


async def receive(
    engine: AsyncEngine,
    key: str,
    status: str,
    rank: int,
    *,
    answered_by: str | None = None,
    error_code: str | None = None,
) -> None:
    """What the webhook receiver writes on a status callback."""
    async with driver_connection(engine) as connection:
        await connection.execute(
            """
            UPDATE provider_attempts SET status = $2, status_rank = $3,
              answered_by = coalesce(answered_by, $4), error_code = coalesce(error_code, $5),
              updated_at = now()
            WHERE attempt_key = $1 AND status_rank < $3
            """,
            key,
            status,
            rank,
            answered_by,
            error_code,
        )


async def row(engine: AsyncEngine, key: str) -> dict[str, object] | None:
    async with driver_connection(engine) as connection:
        record = await connection.fetchrow(
            "SELECT * FROM provider_attempts WHERE attempt_key = $1", key
        )
    return None if record is None else dict(record)


async def placed(stub: Stub, key: str) -> None:
    async with asyncio.timeout(10):
        while True:
            if stub.posts[key]:
                return
            await asyncio.sleep(0.01)


async def test_a_final_status_settles_the_attempt_with_its_result(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempt = request()
    key = attempt.attempt_key
    waiting = asyncio.create_task(voice.attempt(attempt))
    await placed(stub, key)
    async with asyncio.timeout(10):  # the POST's answer is stored after the stub counted it
        while True:
            stored = await row(engine, key)
            if stored is not None and stored["state"] == "placed":
                break
            await asyncio.sleep(0.01)
    assert stored is not None
    assert (stored["state"], stored["sid"], stored["message"]) == (
        "placed",
        stub.sid_of(key),
        "Hi Ann",
    )
    assert stored["sub_campaign_id"] == 915 and stored["bridge"] is False
    await receive(engine, key, "ringing", 3)
    await receive(engine, key, "completed", 9, answered_by="machine_end_beep")
    assert await waiting == AttemptOutcome("delivered_machine")
    stored = await row(engine, key)
    assert stored is not None
    assert (stored["state"], stored["result"], stored["message"]) == (
        "settled",
        "delivered_machine",
        None,
    )
    assert stored["settled_at"] is not None


async def test_a_repeated_key_is_never_placed_again(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempt = request()
    key = attempt.attempt_key
    first = asyncio.create_task(voice.attempt(attempt))
    await placed(stub, key)
    again = asyncio.create_task(voice.attempt(attempt))  # a re-worked batch, call in flight
    await asyncio.sleep(0.3)
    assert not again.done()
    await receive(engine, key, "busy", 9)
    assert (await first).result == (await again).result == "busy"
    assert (await voice.attempt(attempt)).result == "busy"  # after it settled
    assert stub.posts[key] == 1 and stub.post_tries == 1


async def test_the_deadline_looks_the_call_up_by_its_sid(engine: AsyncEngine, stub: Stub) -> None:
    voice = provider(TwilioVoice, engine, stub.url, timeout=0.5)
    try:
        attempt = request()
        key = attempt.attempt_key
        waiting = asyncio.create_task(voice.attempt(attempt))
        await placed(stub, key)
        sid = stub.sid_of(key)
        stub.resources[sid]["status"] = "no-answer"  # its callbacks were lost
        assert (await waiting).result == "no_answer"
    finally:
        await voice.close()
    assert stub.gets == [f"/2010-04-01/Accounts/{SID}/Calls/{sid}.json"]
    stored = await row(engine, key)
    assert stored is not None
    assert (stored["state"], stored["status"], stored["status_rank"]) == ("settled", "no-answer", 9)


async def test_a_message_sent_but_never_confirmed_counts_as_delivered_at_the_deadline(
    engine: AsyncEngine, stub: Stub
) -> None:
    sms = provider(TwilioSms, engine, stub.url, timeout=0.5)
    try:
        attempt = request(Channel.SMS)
        waiting = asyncio.create_task(sms.attempt(attempt))
        await placed(stub, attempt.attempt_key)
        stub.resources[stub.sid_of(attempt.attempt_key)]["status"] = "sent"
        assert (await waiting).result == "success"
    finally:
        await sms.close()
    stored = await row(engine, attempt.attempt_key)
    assert stored is not None and stored["message"] is None  # an SMS body is never stored


async def test_a_post_whose_answer_was_lost_is_found_by_the_list_not_placed_again(
    engine: AsyncEngine, stub: Stub
) -> None:
    stub.script.append(Scripted(201, delay=1.0, create=True))
    voice = provider(TwilioVoice, engine, stub.url, timeout=1.0, http_timeout=0.3)
    try:
        attempt = request()
        key = attempt.attempt_key
        waiting = asyncio.create_task(voice.attempt(attempt))
        await placed(stub, key)
        sid = stub.sid_of(key)
        stub.resources[sid].update(status="completed", answered_by="human")
        assert (await waiting).result == "delivered_person"
    finally:
        await voice.close()
    assert stub.posts[key] == 1 and stub.post_tries == 1
    assert stub.list_queries and stub.list_queries[-1]["To"] == TO
    stored = await row(engine, key)
    assert stored is not None and stored["sid"] == sid


async def test_a_claim_whose_post_never_left_is_placed_once_at_the_deadline(
    engine: AsyncEngine, stub: Stub
) -> None:
    attempt = request()
    key = attempt.attempt_key
    async with driver_connection(engine) as connection:  # a worker claimed it, then died
        await connection.execute(
            "INSERT INTO provider_attempts (attempt_key, sub_campaign_id, channel, provider)"
            " VALUES ($1, 915, 'voice', 'twilio')",
            key,
        )
    voice = provider(TwilioVoice, engine, stub.url, timeout=0.5)
    try:
        waiting = asyncio.create_task(voice.attempt(attempt))
        await placed(stub, key)  # the list found nothing: placed now
        assert stub.list_queries
        await receive(engine, key, "completed", 9, answered_by="machine_start")
        assert (await waiting).result == "hang_up_on_machine"
        assert (await voice.attempt(attempt)).result == "hang_up_on_machine"
    finally:
        await voice.close()
    assert stub.posts[key] == 1


async def test_a_bridged_live_answer_returns_at_once_and_connect_writes_the_agent(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempt = request(Channel.DIALER, agent_group="desk")
    key = attempt.attempt_key
    waiting = asyncio.create_task(voice.attempt(attempt))
    await placed(stub, key)
    await receive(engine, key, "in-progress", 4, answered_by="human")
    assert await waiting == AttemptOutcome("delivered_person")  # not DECIDED: the pass decides
    stored = await row(engine, key)
    assert stored is not None and stored["bridge"] is True and stored["state"] == "placed"
    address = voice.agent_address("desk", None)
    assert address == "sip:desk@agents.invalid"
    await voice.connect(attempt, address, "agent_connected")
    stored = await row(engine, key)
    assert stored is not None
    assert (stored["connect_to"], stored["state"], stored["result"], stored["message"]) == (
        address,
        "settled",
        "agent_connected",
        None,
    )
    # a re-worked batch gets the decision back, marked so no second agent is taken
    assert await voice.attempt(attempt) == AttemptOutcome("agent_connected", DECIDED)
    assert stub.posts[key] == 1


async def test_a_live_answer_no_agent_took_keeps_its_message_for_the_answer_url(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempt = request(Channel.VOICE, agent_group="desk")
    waiting = asyncio.create_task(voice.attempt(attempt))
    await placed(stub, attempt.attempt_key)
    await receive(engine, attempt.attempt_key, "in-progress", 4, answered_by="unknown")
    assert (await waiting).result == "delivered_person"
    await voice.connect(attempt, "", "delivered_person")
    stored = await row(engine, attempt.attempt_key)
    assert stored is not None
    assert (stored["connect_to"], stored["message"]) == ("", "Hi Ann")
    assert voice.agent_address("desk", "+15005550009") == "+15005550009"


async def test_a_machine_on_a_bridged_pass_waits_for_the_final_status(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempt = request(Channel.VOICE, agent_group="desk")
    key = attempt.attempt_key
    waiting = asyncio.create_task(voice.attempt(attempt))
    await placed(stub, key)
    await receive(engine, key, "in-progress", 4, answered_by="machine_end_beep")
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await receive(engine, key, "completed", 9)
    assert await waiting == AttemptOutcome("delivered_machine", DECIDED)


async def test_a_refused_message_settles_at_once_without_retry(
    engine: AsyncEngine, stub: Stub
) -> None:
    stub.script.append(Scripted(400, 21610))
    sms = provider(TwilioSms, engine, stub.url)
    try:
        attempt = request(Channel.SMS)
        assert (await sms.attempt(attempt)).result == "opted_out"
        assert (await sms.attempt(attempt)).result == "opted_out"
    finally:
        await sms.close()
    assert stub.post_tries == 1
    stored = await row(engine, attempt.attempt_key)
    assert stored is not None
    assert (stored["state"], stored["error_code"]) == ("settled", "21610")


async def test_an_unreachable_carrier_leaves_no_claim_behind(engine: AsyncEngine) -> None:
    voice = provider(TwilioVoice, engine, f"http://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        attempt = request()
        with pytest.raises(ConnectionError):
            await voice.attempt(attempt)
    finally:
        await voice.close()
    assert await row(engine, attempt.attempt_key) is None  # claimable again


async def test_the_board_reads_every_awaited_key_in_one_query_per_tick(
    engine: AsyncEngine, stub: Stub, voice: TwilioVoice
) -> None:
    attempts = [request() for _ in range(20)]
    waiting = [asyncio.create_task(voice.attempt(a)) for a in attempts]
    for attempt in attempts:
        await placed(stub, attempt.attempt_key)
    await asyncio.sleep(0.3)
    before = voice.board.ticks
    async with driver_connection(engine) as connection:
        await connection.execute(
            "UPDATE provider_attempts SET status = 'completed', status_rank = 9,"
            " answered_by = 'human' WHERE attempt_key = ANY($1::text[])",
            [a.attempt_key for a in attempts],
        )
    results = await asyncio.gather(*waiting)
    assert {r.result for r in results} == {"delivered_person"}
    assert voice.board.ticks - before <= 3  # one tick found all 20, not one query each


async def test_the_calls_per_second_bucket_spaces_placements() -> None:
    bucket = Pacer.per_second(20)
    started = time.monotonic()
    for _ in range(5):
        await bucket.wait()
    # a lower bound only (a sleep never ends early): 5 slots are 4 intervals apart
    assert time.monotonic() - started >= 4 / 20 - 0.01
    assert Pacer.per_second(0).interval == 0


async def test_the_settings_pick_each_channels_provider(engine: AsyncEngine) -> None:
    from csm.channels.simulator import SimulatedCarrier
    from csm.providers.build import build_channels
    from csm.settings import Settings

    channels = build_channels(Settings(voice_provider="twilio", _env_file=None), engine)
    try:
        voice = channels.for_channel(Channel.VOICE)
        assert isinstance(voice, TwilioVoice) and channels.for_channel(Channel.DIALER) is voice
        assert isinstance(channels.for_channel(Channel.SMS), SimulatedCarrier)
    finally:
        await channels.close()
    channels = build_channels(Settings(sms_provider="twilio", _env_file=None), engine)
    try:
        assert isinstance(channels.for_channel(Channel.SMS), TwilioSms)
        assert isinstance(channels.for_channel(Channel.VOICE), SimulatedCarrier)
    finally:
        await channels.close()
    with pytest.raises(ValueError, match="CSM_SMS_PROVIDER=twilio needs"):
        build_channels(Settings(sms_provider="twilio", _env_file=None))
