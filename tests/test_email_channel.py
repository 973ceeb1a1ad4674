"""The e-mail channel against a real SMTP server: 4xx retried, 5xx recorded, stable Message-IDs;
plain messages written straight to bytes exactly as the `email` package would write them."""

from __future__ import annotations

import dataclasses
import string
from datetime import date
from email.parser import BytesParser
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from aiosmtplib.email import flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from csm.channels import AttemptRequest
from csm.channels.email import SmtpEmail
from csm.smtp import SmtpConfig
from csm.testing.servers import free_port
from csm.vocabulary import Channel


class Picky:
    """Greylists one address once, refuses another, accepts the rest."""

    def __init__(self) -> None:
        self.greylisted: set[str] = set()
        self.received: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("later@") and address not in self.greylisted:
            self.greylisted.add(address)
            return "450 4.2.0 greylisted, try again"
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content)
        return "250 accepted"


def request(address: str, key: str) -> AttemptRequest:
    return AttemptRequest(
        attempt_key=key,
        day=date(2026, 3, 2),
        pass_number=1,
        contact_id=1,
        device_id=2,
        try_number=0,
        device_kind="email",
        address=address,
        channel=Channel.EMAIL,
        local_hour=10,
        message="Your balance is 120.50.",
        subject="Payment reminder",
    )


async def test_transient_refusal_is_retried_permanent_is_bounced() -> None:
    handler = Picky()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=port), connections=2)
    try:
        later = await email.attempt(request("later@example.com", "7-20261125-3-1-2-0"))
        nobody = await email.attempt(request("nobody@example.com", "7-20261125-3-1-3-0"))
        fine = await email.attempt(request("fine@example.com", "7-20261125-3-1-4-0"))
    finally:
        await email.close()
        controller.stop()
    assert later.result == "success"  # accepted on the retry after 450
    assert (nobody.result, nobody.detail) == ("bounced", "550")
    assert fine.result == "success"
    assert len(handler.received) == 2
    parsed = [BytesParser().parsebytes(raw) for raw in handler.received]
    assert {m["Message-ID"] for m in parsed} == {
        "<7-20261125-3-1-2-0@csm.local>",
        "<7-20261125-3-1-4-0@csm.local>",
    }
    assert all(m["Subject"] == "Payment reminder" for m in parsed)
    assert all("120.50" in m.get_payload() for m in parsed)


PLAIN_REQUEST = request("customer42@example.com", "7-20261125-3-42-84-0")


def test_a_plain_message_is_written_as_the_email_package_writes_it() -> None:
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=25, sender="CSM <csm@example.com>"))
    plain = email.plain_bytes(PLAIN_REQUEST)
    assert plain is not None  # the common case takes the fast path
    assert plain == flatten_message(email.build(PLAIN_REQUEST))


@settings(max_examples=500, deadline=None)
@given(
    address=st.one_of(
        st.emails(),
        st.from_regex(r"[a-z0-9.+_-]{1,20}@[a-z0-9.-]{1,20}", fullmatch=True),
        st.text(max_size=30),
    ),
    subject=st.one_of(
        st.none(), st.text(max_size=90), st.text(alphabet=string.printable, max_size=90)
    ),
    body=st.one_of(
        st.none(), st.text(max_size=300), st.text(alphabet=string.printable, max_size=300)
    ),
)
def test_plain_bytes_equal_the_email_package_or_defer(
    address: str, subject: str | None, body: str | None
) -> None:
    """Whatever the input, the fast path either declines or writes the very same bytes."""
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=25))
    attempt = dataclasses.replace(PLAIN_REQUEST, address=address, subject=subject, message=body)
    plain = email.plain_bytes(attempt)
    if plain is not None:
        assert plain == flatten_message(email.build(attempt))


def test_a_sender_the_email_package_rewrites_sends_every_message_the_slow_way() -> None:
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=25, sender="Acme, Inc <csm@example.com>"))
    assert email.plain_bytes(PLAIN_REQUEST) is None


class Keeping:
    """Accepts everything and keeps envelopes and contents."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 accepted"


async def test_plain_and_non_ascii_messages_arrive_and_a_line_break_in_a_subject_is_joined() -> (
    None
):
    handler = Keeping()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=port, sender="csm@example.com"))
    unicode = dataclasses.replace(
        PLAIN_REQUEST, message="Grüße, Zoë: 120,50 € fällig.", subject="Zahlung fällig"
    )
    broken = dataclasses.replace(PLAIN_REQUEST, subject="Reminder for\r\nMr. Smith\n")
    try:
        outcomes = [await email.attempt(r) for r in (PLAIN_REQUEST, unicode, broken)]
    finally:
        await email.close()
        controller.stop()
    assert [o.result for o in outcomes] == ["success"] * 3
    assert [(sender, to) for sender, to, _ in handler.received] == [
        ("csm@example.com", ["customer42@example.com"])
    ] * 3
    parsed = [BytesParser(policy=default).parsebytes(raw) for _, _, raw in handler.received]
    bodies = [message.get_content().replace("\r\n", "\n") for message in parsed]
    assert bodies[:2] == ["Your balance is 120.50.\n", "Grüße, Zoë: 120,50 € fällig.\n"]
    assert parsed[1]["Subject"] == "Zahlung fällig"
    assert parsed[2]["Subject"] == "Reminder for Mr. Smith"


async def test_a_lost_connection_is_replaced_and_an_unreachable_server_is_an_outage() -> None:
    """The pooled connection dies with its server: the next attempt connects again. With no
    server at all the attempt raises ConnectionError (the pass then waits out the outage)."""
    handler = Keeping()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=port), connections=1)
    try:
        try:
            first = await email.attempt(PLAIN_REQUEST)
            controller.stop()  # closes the pooled session
            controller = Controller(handler, hostname="127.0.0.1", port=port)
            controller.start()
            second = await email.attempt(PLAIN_REQUEST)
        finally:
            controller.stop()
        with pytest.raises(ConnectionError):
            await email.attempt(PLAIN_REQUEST)
    finally:
        await email.close()
    assert (first.result, second.result) == ("success", "success")
    assert len(handler.received) == 2
