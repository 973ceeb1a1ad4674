"""The Twilio adapter against the local carrier and the webhook receiver, without a pass:
retries through 429s and 500s, refusals mapped without retry, answering-machine outcomes,
and an inbound STOP (issue 15). tests/test_twilio_adapter.py covers what the carrier
cannot be made to do (a POST answer lost on the way back, a SID the carrier forgets)."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.channels import AttemptRequest
from csm.database import driver_connection
from csm.providers.twilio.adapter import TwilioSms, TwilioVoice, sms_from, voice_from
from csm.settings import Settings
from csm.suppressions.store import list_suppressions
from csm.testing.carrier import Routed, carrier_and_receiver
from csm.vocabulary import Channel

DAY = date(2026, 12, 3)
#: A sub-campaign id per test run: provider_attempts is keyed by attempt key, and the
#: session's database outlives a run.
SUB = random.Random().randrange(10**6, 10**7)
CONTACTS = itertools.count(1)


def request(channel: Channel, *, to: str | None = None, message: str = "Hello") -> AttemptRequest:
    contact = next(CONTACTS)
    return AttemptRequest(
        attempt_key=f"{SUB}-{DAY:%Y%m%d}-1-{contact}-{contact}-0",
        day=DAY,
        pass_number=1,
        contact_id=contact,
        device_id=contact,
        try_number=0,
        device_kind="wireless",
        address=to or f"+1602555{contact:04d}",
        channel=channel,
        local_hour=12,
        message=message,
    )


def providers(routed: Routed, engine: AsyncEngine) -> tuple[TwilioVoice, TwilioSms]:
    return voice_from(routed.settings, engine), sms_from(routed.settings, engine)


async def test_429s_and_500s_are_ridden_out_and_nothing_is_placed_twice(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with carrier_and_receiver(settings, engine, throttle_rate=0.3, error_rate=0.2) as routed:
        carrier = routed.local.carrier
        hits = {"throttle": 0, "error": 0}
        for fault in hits:  # count the POSTs the faults refused (the witness's own tally)
            drawn = getattr(carrier.faults, fault)

            def counted(drawn=drawn, fault=fault) -> bool:
                hit = drawn()
                hits[fault] += hit
                return hit

            setattr(carrier.faults, fault, counted)
        voice, sms = providers(routed, engine)
        try:
            asked = [request(Channel.VOICE) for _ in range(12)]
            asked += [request(Channel.SMS) for _ in range(30)]
            outcomes = await asyncio.gather(
                *((voice if r.channel is Channel.VOICE else sms).attempt(r) for r in asked)
            )
        finally:
            await voice.close()
            await sms.close()
    assert hits["throttle"] > 0 and hits["error"] > 0, hits
    for asked_for, outcome in zip(asked, outcomes, strict=True):
        key = asked_for.attempt_key
        assert outcome.result == carrier.world.result(key, asked_for.channel), key
        placed = carrier.record.placements[key] + carrier.record.refused[key]
        assert placed == 1, key  # once: the throttled and failed POSTs placed nothing


async def test_refusals_map_to_result_codes_without_retry(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with carrier_and_receiver(settings, engine) as routed:
        voice, sms = providers(routed, engine)
        try:
            bad_number = request(Channel.VOICE, to="555-0100")  # not E.164: 21211
            bad_text = request(Channel.SMS, to="+1")
            called = await voice.attempt(bad_number)
            texted = await sms.attempt(bad_text)
            # the carrier's world refuses about 2 % of texts as STOPped (21610)
            texts = [request(Channel.SMS) for _ in range(150)]
            results = await asyncio.gather(*(sms.attempt(t) for t in texts))
        finally:
            await voice.close()
            await sms.close()
        record = routed.local.carrier.record
    assert (called.result, texted.result) == ("bad_device", "bad_device")
    for refused in (bad_number, bad_text):
        key = refused.attempt_key
        assert (record.refused[key], record.placements[key]) == (1, 0)
    opted_out = [t for t, r in zip(texts, results, strict=True) if r.result == "opted_out"]
    assert opted_out
    assert all(record.refused[t.attempt_key] == 1 for t in opted_out)
    async with driver_connection(engine) as connection:
        settled = await connection.fetch(
            "SELECT result, error_code FROM provider_attempts WHERE attempt_key = ANY($1)",
            [t.attempt_key for t in opted_out],
        )
    assert {(row["result"], row["error_code"]) for row in settled} == {("opted_out", "21610")}


async def test_each_answering_machine_outcome_comes_back_as_the_carrier_met_it(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with carrier_and_receiver(settings, engine) as routed:
        voice, _ = providers(routed, engine)
        try:
            calls = [request(Channel.VOICE, message="Your balance is due.") for _ in range(80)]
            outcomes = await asyncio.gather(*(voice.attempt(c) for c in calls))
        finally:
            await voice.close()
        carrier = routed.local.carrier
    met = {outcome.result for outcome in outcomes}
    assert {"delivered_person", "delivered_machine", "no_answer", "busy"} <= met
    for call, outcome in zip(calls, outcomes, strict=True):
        assert outcome.result == carrier.world.result(call.attempt_key, Channel.VOICE)
        (placement,) = carrier.record.by_key[call.attempt_key]
        if outcome.result in ("delivered_person", "delivered_machine"):
            assert placement.actions == ["say:Your balance is due."], placement.actions


async def test_an_inbound_stop_suppresses_the_number_everywhere(
    engine: AsyncEngine, settings: Settings
) -> None:
    number = f"+1602777{random.randrange(10**4):04d}"
    async with carrier_and_receiver(settings, engine) as routed:
        async with httpx.AsyncClient(base_url=routed.local.url) as client:
            for body in ("can you call me later", " Stop. "):
                sent = await client.post("/_carrier/inbound", json={"from": number, "body": body})
                assert sent.status_code == 200, sent.text

        async def suppressed() -> bool:
            page = await list_suppressions(engine, only_global=True, kind="phone", value=number)
            return bool(page.rows)

        for _ in range(200):
            if await suppressed():
                break
            await asyncio.sleep(0.05)
    page = await list_suppressions(engine, only_global=True, kind="phone", value=number)
    assert [row.reason for row in page.rows] == ["stop_reply"]
    async with driver_connection(engine) as connection:
        kept = await connection.fetch(
            "SELECT opted_out, received_at FROM inbound_messages WHERE provider = 'twilio'"
            " ORDER BY id DESC LIMIT 2"
        )
    assert sorted(row["opted_out"] for row in kept) == [False, True]
    assert all(row["received_at"] is not None for row in kept)
