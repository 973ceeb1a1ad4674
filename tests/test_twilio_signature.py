"""csm's Twilio webhook signature agrees with the official `twilio` package's validator.

The official package is a dev dependency only: csm signs (the local carrier) and
verifies (the webhook receiver) with its own csm.providers.twilio.signature.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from csm.providers.twilio.signature import sign, verify

TOKEN = "12345678901234567890123456789012"
URL = "https://csm.example.com/twilio/voice/status?attempt=sc17-d20261203-p2-c88-t1"
CALLBACK = {
    "CallSid": "CA1234567890ABCDE",
    "CallStatus": "completed",
    "AnsweredBy": "machine_end_beep",
    "AccountSid": "AC0123456789",
    "From": "+13125550100",
    "To": "+17735550199",
}


def test_a_callback_signed_by_csm_is_valid_for_twilio_and_the_other_way() -> None:
    official = RequestValidator(TOKEN)
    ours = sign(TOKEN, URL, CALLBACK)
    assert official.validate(URL, CALLBACK, ours)
    assert verify(TOKEN, URL, CALLBACK, official.compute_signature(URL, CALLBACK))


def test_any_change_of_url_params_token_or_signature_is_refused() -> None:
    good = sign(TOKEN, URL, CALLBACK)
    assert verify(TOKEN, URL, CALLBACK, good)
    assert not verify(TOKEN, URL.replace("c88", "c89"), CALLBACK, good)
    assert not verify(TOKEN, URL, {**CALLBACK, "CallStatus": "busy"}, good)
    assert not verify(TOKEN, URL, {**CALLBACK, "Extra": ""}, good)
    assert not verify(TOKEN[::-1], URL, CALLBACK, good)
    assert not verify(TOKEN, URL, CALLBACK, good[:-2] + "A=")
    assert not verify(TOKEN, URL, CALLBACK, None)
    assert not verify("", URL, CALLBACK, good)


@pytest.mark.parametrize(
    ("signed_url", "seen_url"),
    [
        (
            "https://csm.example.com/twilio/sms/status",
            "https://csm.example.com:443/twilio/sms/status",
        ),
        (
            "https://csm.example.com:443/twilio/sms/status",
            "https://csm.example.com/twilio/sms/status",
        ),
        ("http://127.0.0.1/twilio/sms/status", "http://127.0.0.1:80/twilio/sms/status"),
    ],
)
def test_the_default_port_written_or_not_is_the_same_url(signed_url: str, seen_url: str) -> None:
    signature = RequestValidator(TOKEN).compute_signature(signed_url, CALLBACK)
    assert verify(TOKEN, seen_url, CALLBACK, signature)
    assert RequestValidator(TOKEN).validate(seen_url, CALLBACK, signature)


def test_another_port_is_another_url() -> None:
    signature = sign(TOKEN, "https://csm.example.com:8443/twilio/sms/status", CALLBACK)
    assert not verify(TOKEN, "https://csm.example.com/twilio/sms/status", CALLBACK, signature)


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(params=st.dictionaries(st.text(min_size=1, max_size=8), texts, max_size=6), path=texts)
def test_any_form_signs_as_the_official_validator(params: dict[str, str], path: str) -> None:
    url = f"https://csm.example.com/twilio/sms/inbound?x={path}"
    assert sign(TOKEN, url, params) == RequestValidator(TOKEN).compute_signature(url, params)


class _Form(dict[str, list[str]]):
    """A form with a repeated name, as the official validator reads one (Django's getlist)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def test_a_repeated_name_signs_each_of_its_values_as_the_official_validator() -> None:
    form = {"Body": ["STOP"], "MediaUrl": ["https://m.example/2", "https://m.example/1"]}
    signature = RequestValidator(TOKEN).compute_signature(URL, _Form(form))
    assert sign(TOKEN, URL, form) == signature
    assert verify(TOKEN, URL, form, signature)
    assert not verify(TOKEN, URL, {**form, "MediaUrl": ["https://m.example/2"]}, signature)
