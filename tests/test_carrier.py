"""The local carrier speaks Twilio's protocol: REST, signed callbacks, TwiML, record, faults.

The carrier runs in-process on a real port; a small real receiver (the sink below)
takes its callbacks, checks each signature with csm.providers.twilio.signature.verify
and keeps them. Outcomes are known ahead: the test asks the same seeded world
(csm.devstack.carrier.world) what each attempt key draws.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from csm.devstack.carrier.carrier import CarrierConfig
from csm.devstack.carrier.faults import Faults
from csm.devstack.carrier.world import CALL_PLANS, World
from csm.providers.twilio.protocol import (
    SMS_INBOUND_PATH,
    SMS_STATUS_PATH,
    VOICE_ANSWER_PATH,
    VOICE_STATUS_PATH,
    call_result,
    callback_url,
    message_result,
)
from csm.providers.twilio.signature import verify
from csm.testing.carrier import LocalCarrier, local_carrier, serve_asgi
from csm.vocabulary import Channel

SID = "ACtest0000000000000000000000000000"
TOKEN = "carrier-test-token"
SEED = 11
TO = "+33612345678"
FROM = "+15005550006"
AUTH = (SID, TOKEN)


@dataclass
class Hit:
    path: str
    key: str | None
    form: dict[str, str]
    signed: bool


@dataclass
class Sink:
    """A webhook receiver that verifies and keeps every callback."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    #: attempt key → TwiML documents to answer in turn (the last one repeats)
    answers: dict[str, list[str]] = field(default_factory=dict)

    def statuses(self, key: str) -> list[str]:
        return [
            h.form.get("CallStatus") or h.form["MessageStatus"]
            for h in self.hits
            if h.key == key and h.path in (VOICE_STATUS_PATH, SMS_STATUS_PATH)
        ]

    def of(self, key: str, path: str) -> list[Hit]:
        return [h for h in self.hits if h.key == key and h.path == path]


@asynccontextmanager
async def sink() -> AsyncIterator[Sink]:
    received = Sink()

    async def hook(request: Request) -> Response:
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        full_url = f"{received.url}{request.url.path}"
        if request.url.query:
            full_url += f"?{request.url.query}"
        signed = verify(TOKEN, full_url, form, request.headers.get("x-twilio-signature"))
        key = request.query_params.get("key")
        received.hits.append(Hit(request.url.path, key, {k: v[0] for k, v in form.items()}, signed))
        if request.url.path == VOICE_ANSWER_PATH:
            queue = received.answers.get(key or "", ["<Response><Say>hello</Say></Response>"])
            document = queue.pop(0) if len(queue) > 1 else queue[0]
            return Response(document, media_type="text/xml")
        if request.url.path == SMS_INBOUND_PATH:
            return Response("<Response/>", media_type="text/xml")
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{rest:path}", hook, methods=["POST"])])
    async with serve_asgi(app) as url:
        received.url = url
        yield received


def config(receiver: Sink, **overrides: object) -> CarrierConfig:
    return CarrierConfig(
        account_sid=SID,
        auth_token=TOKEN,
        public_url=receiver.url,
        seed=SEED,
        faults=overrides.pop("faults", Faults(seed=SEED)),  # type: ignore[arg-type]
        callback_backoff=0.01,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Sink]:
    async with sink() as received:
        yield received


@pytest.fixture
async def carrier(receiver: Sink) -> AsyncIterator[LocalCarrier]:
    async with local_carrier(config(receiver)) as running:
        yield running


@pytest.fixture
async def client(carrier: LocalCarrier) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=carrier.url, auth=AUTH) as http:
        yield http


WORLD = World(SEED)


def key_for(channel: Channel, result: str, start: int = 1) -> str:
    """An attempt key that the seeded world answers with `result`."""
    for contact in range(start, start + 5000):
        key = f"7-20260105-1-{contact}-{contact + 100}-1"
        if WORLD.result(key, channel) == result:
            return key
    raise AssertionError(f"no key draws {result}")


def place_call(http: httpx.AsyncClient, public: str, key: str, **form: str):
    return http.post(
        f"/2010-04-01/Accounts/{SID}/Calls.json",
        data={
            "To": TO,
            "From": FROM,
            "Url": callback_url(public, VOICE_ANSWER_PATH, key),
            "StatusCallback": callback_url(public, VOICE_STATUS_PATH, key),
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "MachineDetection": "DetectMessageEnd",
            **form,
        },
    )


def send_sms(http: httpx.AsyncClient, public: str, key: str, **form: str):
    return http.post(
        f"/2010-04-01/Accounts/{SID}/Messages.json",
        data={
            "To": TO,
            "From": FROM,
            "Body": "hello",
            "StatusCallback": callback_url(public, SMS_STATUS_PATH, key),
            **form,
        },
    )


async def record(http: httpx.AsyncClient) -> dict:
    return (await http.get("/_carrier/record")).json()


# ---- calls ------------------------------------------------------------------------


async def test_each_drawn_call_outcome_plays_out_in_the_protocol(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    keys = {result: key_for(Channel.VOICE, result) for result in CALL_PLANS}
    for key in keys.values():
        answer = await place_call(client, receiver.url, key)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["status"] == "queued" and body["sid"].startswith("CA")
        assert len(body["sid"]) == 34
    await carrier.settled()

    assert receiver.hits and all(hit.signed for hit in receiver.hits)
    answered = ("delivered_person", "delivered_machine", "undelivered_machine")
    for result, key in keys.items():
        plan = CALL_PLANS[result]
        statuses = receiver.statuses(key)
        final = receiver.of(key, VOICE_STATUS_PATH)[-1].form
        assert statuses[-1] == plan.final, result
        assert final.get("AnsweredBy") == plan.answered_by, result
        assert final.get("ErrorCode") == plan.error_code, result
        # the adapter's mapping gives back the very result the world drew
        assert call_result(
            final["CallStatus"], final.get("AnsweredBy"), final.get("ErrorCode")
        ) == (result)
        sequence = [int(h.form["SequenceNumber"]) for h in receiver.of(key, VOICE_STATUS_PATH)]
        assert sequence == list(range(len(sequence)))
        requests = receiver.of(key, VOICE_ANSWER_PATH)
        if plan.final == "completed":
            assert statuses == ["initiated", "ringing", "in-progress", "completed"]
            assert [r.form["AnsweredBy"] for r in requests] == [plan.answered_by]
            assert requests[0].form["CallStatus"] == "in-progress"
            details = (await client.get("/_carrier/placements", params={"key": key})).json()
            assert details["placements"][0]["actions"] == ["say:hello"]
        else:
            assert requests == []
    assert receiver.statuses(keys["no_answer"]) == ["initiated", "ringing", "no-answer"]
    assert receiver.statuses(keys["busy"]) == ["initiated", "busy"]
    assert receiver.statuses(keys["bad_device"]) == ["initiated", "failed"]
    assert set(answered) < set(keys)
    counts = await record(client)
    assert counts["calls"] == len(keys)
    assert counts["callbacks_failed"] == 0
    assert counts["placements"] == {key: 1 for key in keys.values()}


async def test_a_live_answer_follows_redirects_and_is_dialled(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    key = key_for(Channel.VOICE, "delivered_person")
    answer_url = callback_url(receiver.url, VOICE_ANSWER_PATH, key)
    receiver.answers[key] = [
        f'<Response><Pause length="1"/><Redirect method="POST">{answer_url}</Redirect></Response>',
        "<Response><Dial><Sip>sip:g1@agents.invalid</Sip></Dial></Response>",
    ]
    other = key_for(Channel.VOICE, "delivered_person", start=3000)
    receiver.answers[other] = ["<Response><Dial>+33700000000</Dial></Response>"]
    hung_up = key_for(Channel.VOICE, "delivered_person", start=6000)
    receiver.answers[hung_up] = ["<Response><Say>bye</Say><Hangup/><Say>never</Say></Response>"]
    for each in (key, other, hung_up):
        assert (await place_call(client, receiver.url, each)).status_code == 201
    await carrier.settled()

    requests = receiver.of(key, VOICE_ANSWER_PATH)
    assert len(requests) == 2 and all(r.signed for r in requests)
    details = (await client.get("/_carrier/placements", params={"key": key})).json()
    assert details["placements"][0]["actions"] == [
        "pause",
        "redirect",
        "dial:sip:g1@agents.invalid",
    ]
    hung = (await client.get("/_carrier/placements", params={"key": hung_up})).json()
    assert hung["placements"][0]["actions"] == ["say:bye", "hangup"]
    assert (await record(client))["bridged"] == {
        key: "sip:g1@agents.invalid",
        other: "+33700000000",
    }


async def test_without_machine_detection_no_answered_by_is_reported(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    key = key_for(Channel.VOICE, "delivered_machine")
    assert (await place_call(client, receiver.url, key, MachineDetection="")).status_code == 201
    await carrier.settled()
    final = receiver.of(key, VOICE_STATUS_PATH)[-1].form
    assert final["CallStatus"] == "completed"
    assert "AnsweredBy" not in final


# ---- messages ---------------------------------------------------------------------


async def test_messages_are_delivered_undelivered_or_refused(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    delivered = key_for(Channel.SMS, "success")
    undelivered = key_for(Channel.SMS, "failed")
    opted_out = key_for(Channel.SMS, "opted_out")

    for key in (delivered, undelivered):
        answer = await send_sms(client, receiver.url, key)
        assert answer.status_code == 201
        assert answer.json()["status"] == "queued" and answer.json()["sid"].startswith("SM")
    refused = await send_sms(client, receiver.url, opted_out)
    assert refused.status_code == 400
    assert refused.json()["code"] == 21610
    await carrier.settled()

    assert receiver.statuses(delivered) == ["queued", "sent", "delivered"]
    assert receiver.statuses(undelivered) == ["queued", "sent", "undelivered"]
    final = receiver.of(undelivered, SMS_STATUS_PATH)[-1].form
    assert final["ErrorCode"] == "30003"
    assert message_result(final["MessageStatus"], final["ErrorCode"]) == "failed"
    assert receiver.statuses(opted_out) == []
    counts = await record(client)
    assert counts["messages"] == 2
    assert counts["placements"] == {delivered: 1, undelivered: 1}
    assert counts["refused"] == {opted_out: 1}


# ---- REST refusals, look-ups, the record --------------------------------------------


async def test_refusals_say_what_is_wrong(receiver: Sink, carrier: LocalCarrier) -> None:
    key = key_for(Channel.VOICE, "busy")
    async with httpx.AsyncClient(base_url=carrier.url, auth=(SID, "wrong")) as wrong:
        refused = await place_call(wrong, receiver.url, key)
        assert refused.status_code == 401
        assert refused.json()["code"] == 20003
    async with httpx.AsyncClient(base_url=carrier.url) as anonymous:
        assert (await anonymous.get(f"/2010-04-01/Accounts/{SID}/Calls.json")).status_code == 401
    async with httpx.AsyncClient(base_url=carrier.url, auth=AUTH) as http:
        other_account = await http.get("/2010-04-01/Accounts/ACother/Calls.json")
        assert (other_account.status_code, other_account.json()["code"]) == (404, 20404)
        invalid = await place_call(http, receiver.url, key, To="0612345678")
        assert (invalid.status_code, invalid.json()["code"]) == (400, 21211)
        no_url = await place_call(http, receiver.url, key, Url="")
        assert (no_url.status_code, no_url.json()["code"]) == (400, 21205)
        bad_sms = await send_sms(http, receiver.url, key, To="+0")
        assert (bad_sms.status_code, bad_sms.json()["code"]) == (400, 21211)
        counts = await record(http)
    assert counts["calls"] == 0 and counts["placements"] == {}
    assert counts["refused"] == {key: 3}


async def test_look_up_by_sid_and_list_by_recipient(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    key = key_for(Channel.VOICE, "delivered_machine")
    call = (await place_call(client, receiver.url, key)).json()
    sms_key = key_for(Channel.SMS, "failed")
    message = (await send_sms(client, receiver.url, sms_key, To="+33699999999")).json()
    await carrier.settled()

    found = (await client.get(f"/2010-04-01/Accounts/{SID}/Calls/{call['sid']}.json")).json()
    assert (found["status"], found["answered_by"]) == ("completed", "machine_end_beep")
    looked = (await client.get(f"/2010-04-01/Accounts/{SID}/Messages/{message['sid']}.json")).json()
    assert (looked["status"], looked["error_code"]) == ("undelivered", 30003)
    missing = await client.get(f"/2010-04-01/Accounts/{SID}/Calls/CA{'0' * 32}.json")
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    # a message's SID is not a call's
    crossed = await client.get(f"/2010-04-01/Accounts/{SID}/Calls/{message['sid']}.json")
    assert crossed.status_code == 404

    today = found["date_created"]
    assert today
    listed = await client.get(
        f"/2010-04-01/Accounts/{SID}/Calls.json",
        params={"To": TO, "From": FROM, "StartTime>": "2020-01-01"},
    )
    assert [c["sid"] for c in listed.json()["calls"]] == [call["sid"]]
    for miss in ({"To": "+33611111111"}, {"From": "+15550000000"}, {"StartTime>": "2999-01-01"}):
        empty = await client.get(
            f"/2010-04-01/Accounts/{SID}/Calls.json", params={"To": TO, **miss}
        )
        assert empty.json()["calls"] == [], miss
    messages = await client.get(
        f"/2010-04-01/Accounts/{SID}/Messages.json",
        params={"To": "+33699999999", "DateSent>": "2020-01-01"},
    )
    assert [m["sid"] for m in messages.json()["messages"]] == [message["sid"]]
    bad_date = await client.get(
        f"/2010-04-01/Accounts/{SID}/Calls.json", params={"StartTime>": "yesterday"}
    )
    assert bad_date.status_code == 400 and "StartTime>" in bad_date.json()["message"]


async def test_the_record_counts_every_post_of_a_key(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    """The carrier does not deduplicate: it is the witness that csm never places twice."""
    key = key_for(Channel.VOICE, "no_answer")
    once = key_for(Channel.VOICE, "busy")
    for each in (key, key, once):
        assert (await place_call(client, receiver.url, each)).status_code == 201
    await carrier.settled()
    counts = await record(client)
    assert counts["placements"] == {key: 2, once: 1}
    assert counts["calls"] == 3
    details = (await client.get("/_carrier/placements", params={"key": key})).json()
    assert len({p["sid"] for p in details["placements"]}) == 2


async def test_the_journal_survives_a_restart(receiver: Sink, tmp_path: Path) -> None:
    journal = tmp_path / "carrier.journal"
    key = key_for(Channel.VOICE, "delivered_person")
    sms_key = key_for(Channel.SMS, "success", start=2000)
    async with (
        local_carrier(config(receiver, journal=journal)) as first,
        httpx.AsyncClient(base_url=first.url, auth=AUTH) as http,
    ):
        call = (await place_call(http, receiver.url, key)).json()
        await send_sms(http, receiver.url, sms_key)
        await first.settled()
    assert TO not in journal.read_text()  # no phone number in the journal

    async with (
        local_carrier(config(receiver, journal=journal)) as second,
        httpx.AsyncClient(base_url=second.url, auth=AUTH) as http,
    ):
        counts = await record(http)
        assert counts["placements"] == {key: 1, sms_key: 1}
        assert (counts["calls"], counts["messages"]) == (1, 1)
        found = await http.get(f"/2010-04-01/Accounts/{SID}/Calls/{call['sid']}.json")
        assert (found.json()["status"], found.json()["answered_by"]) == ("completed", "human")
        listed = await http.get(f"/2010-04-01/Accounts/{SID}/Calls.json", params={"To": TO})
        assert [c["sid"] for c in listed.json()["calls"]] == [call["sid"]]
        assert (await place_call(http, receiver.url, key)).status_code == 201
        assert (await record(http))["placements"][key] == 2


# ---- faults and limits ------------------------------------------------------------


async def test_throttle_and_error_faults_place_nothing(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    key = key_for(Channel.SMS, "success")
    assert (await client.post("/_carrier/faults", json={"throttle_rate": 1.0})).status_code == 200
    throttled = await send_sms(client, receiver.url, key)
    assert (throttled.status_code, throttled.json()["code"]) == (429, 20429)
    await client.post("/_carrier/faults", json={"throttle_rate": 0, "error_rate": 1})
    failed = await place_call(client, receiver.url, key)
    assert failed.status_code == 500
    await client.post("/_carrier/faults", json={"error_rate": 0})
    assert (await send_sms(client, receiver.url, key)).status_code == 201
    await carrier.settled()
    assert (await record(client))["placements"] == {key: 1}

    for bad in ({"error_rate": 2}, {"lose": 0.1}, {"reorder": "yes"}, {"cps": "x"}, [1]):
        refused = await client.post("/_carrier/faults", json=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["message"]


async def test_lost_and_repeated_callbacks_are_counted(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    lost = key_for(Channel.SMS, "success")
    await client.post("/_carrier/faults", json={"lose_callbacks": 1.0})
    sms = (await send_sms(client, receiver.url, lost)).json()
    await carrier.settled()
    assert receiver.statuses(lost) == []
    looked = await client.get(f"/2010-04-01/Accounts/{SID}/Messages/{sms['sid']}.json")
    assert looked.json()["status"] == "delivered"  # the look-up still knows

    repeated = key_for(Channel.SMS, "success", start=4000)
    await client.post("/_carrier/faults", json={"lose_callbacks": 0, "repeat_callbacks": 1})
    await send_sms(client, receiver.url, repeated)
    await carrier.settled()
    assert receiver.statuses(repeated) == [
        "queued",
        "queued",
        "sent",
        "sent",
        "delivered",
        "delivered",
    ]
    counts = await record(client)
    assert (counts["callbacks_lost"], counts["callbacks_repeated"]) == (3, 3)
    assert counts["callbacks_sent"] == 6


async def test_reorder_sends_some_final_statuses_first(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    await client.post("/_carrier/faults", json={"reorder": True})
    keys = [key_for(Channel.SMS, "success", start=100 * n) for n in range(1, 9)]
    for key in keys:
        await send_sms(client, receiver.url, key)
    await carrier.settled()
    orders = {tuple(receiver.statuses(key)) for key in keys}
    assert ("queued", "delivered", "sent") in orders
    assert ("queued", "sent", "delivered") in orders  # only some are reordered


async def test_callbacks_to_a_dead_receiver_are_retried_then_counted_failed(
    receiver: Sink,
) -> None:
    async with local_carrier(config(receiver, callback_retries=2)) as running:
        dead = "http://127.0.0.1:9"  # discard port: nothing listens
        async with httpx.AsyncClient(base_url=running.url, auth=AUTH) as http:
            await send_sms(http, dead, key_for(Channel.SMS, "success"))
            await running.settled()
            counts = await record(http)
    assert counts["callbacks_failed"] == 3 and counts["callbacks_sent"] == 0


async def test_calls_per_second_limit(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    await client.post("/_carrier/faults", json={"cps": 0.01})  # one call, then none for 100 s
    key = key_for(Channel.VOICE, "busy")
    assert (await place_call(client, receiver.url, key)).status_code == 201
    over = await place_call(client, receiver.url, key)
    assert (over.status_code, over.json()["code"]) == (429, 20429)
    assert (await send_sms(client, receiver.url, key)).status_code in (201, 400)  # SMS unlimited
    await carrier.settled()
    assert (await record(client))["placements"][key] >= 1


# ---- inbound and the command line ------------------------------------------------------


async def test_an_inbound_text_is_a_signed_webhook(
    receiver: Sink, carrier: LocalCarrier, client: httpx.AsyncClient
) -> None:
    sent = await client.post("/_carrier/inbound", json={"from": TO, "body": "STOP"})
    assert sent.status_code == 200
    assert sent.json()["status"] == 200 and sent.json()["twiml"] == "<Response/>"
    (hit,) = [h for h in receiver.hits if h.path == SMS_INBOUND_PATH]
    assert hit.signed and hit.key is None
    assert (hit.form["From"], hit.form["Body"], hit.form["To"]) == (TO, "STOP", FROM)
    assert hit.form["MessageSid"] == sent.json()["sid"]
    refused = await client.post("/_carrier/inbound", json={"from": "me", "body": "STOP"})
    assert refused.status_code == 400


def test_help_explains_the_flags() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "csm.devstack.carrier", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    for flag in ("--speed", "--seed", "--journal", "--cps", "--lose-callbacks", "--reorder"):
        assert flag in shown.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "csm.devstack.carrier", "--error-rate", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "--error-rate" in wrong.stderr
