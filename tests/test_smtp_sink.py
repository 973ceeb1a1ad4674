"""The SMTP sink stores every message it accepts, with its envelope."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib

from csm.devstack.smtp_sink import messages


async def test_sink_stores_each_message_as_eml(smtp: tuple[int, Path]) -> None:
    port, directory = smtp
    before = len(messages(directory))
    message = EmailMessage()
    message["From"] = "csm@localhost"
    message["To"] = "someone@example.test"
    message["Subject"] = "payment reminder"
    message.set_content("hello")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port)

    stored = messages(directory)
    assert len(stored) == before + 1
    parsed = BytesParser().parsebytes(stored[-1].read_bytes())
    assert parsed["X-Envelope-To"] == "someone@example.test"
    assert parsed["Subject"] == "payment reminder"
    assert parsed.get_payload().strip() == "hello"
