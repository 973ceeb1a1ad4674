"""The e-mail channel against a real SMTP server: 4xx retried, 5xx recorded, stable Message-IDs."""

from __future__ import annotations

from email.parser import BytesParser

from aiosmtpd.controller import Controller

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
