"""E-mail over real SMTP (aiosmtplib): pooled connections, bounded concurrency, stable Message-IDs.

4xx replies are retried a few times with a short backoff; 5xx replies are
final: `bounced` when the server refused the recipient, else `failed`.

Building an `EmailMessage` and flattening it costs about 1.6 ms a message here,
more than the SMTP exchange itself, so the plain case (ASCII address, short
ASCII subject and body lines) is written straight to bytes: the very bytes the
`email` package would produce (tests/test_email_channel.py checks them
against it). Anything else goes through `EmailMessage` as before.
"""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib.email import extract_sender, flatten_message

from csm.channels.base import AttemptOutcome, AttemptRequest
from csm.smtp import SmtpConfig

TRANSIENT_RETRIES = 3
#: Header and body lines the `email` package leaves unfolded (its policy's line length).
_MAX_LINE = 78
#: A plain ASCII dot-atom address: rendered in `To:` exactly as given.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
#: Printable ASCII and tabs: an unstructured header the `email` package writes unchanged.
_PLAIN_TEXT = re.compile(r"[\t\x20-\x7e]+")
_BODY_HEADERS = (
    'Content-Type: text/plain; charset="utf-8"\r\n'
    "Content-Transfer-Encoding: 7bit\r\n"
    "MIME-Version: 1.0\r\n\r\n"
)


class SmtpEmail:
    """A pool of `connections` reused SMTP sessions; at most that many messages in flight."""

    def __init__(self, config: SmtpConfig, *, connections: int = 10, domain: str = "csm.local"):
        self.config = config
        self.domain = domain
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(connections)
        self._all: list[aiosmtplib.SMTP] = []
        self._envelope_sender, self._from_header = _sender(config.sender)

    def message_id(self, request: AttemptRequest) -> str:
        return f"<{request.attempt_key}@{self.domain}>"

    def build(self, request: AttemptRequest) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = request.address
        message["Subject"] = _subject(request)
        message["Message-ID"] = self.message_id(request)
        message.set_content(request.message or "")
        return message

    def plain_bytes(self, request: AttemptRequest) -> bytes | None:
        """The message as `build` would flatten it for SMTP, or None when it is not a plain
        one (non-ASCII or long lines, unusual addresses): then `build` does the work."""
        if self._from_header is None:
            return None
        address, subject = request.address, _subject(request)
        if (
            len(address) > _MAX_LINE - 4
            or not _PLAIN_ADDRESS.fullmatch(address)
            or len(subject) > _MAX_LINE - 9
            or not _PLAIN_TEXT.fullmatch(subject)
            or "=?" in subject  # would be read as an encoded word
        ):
            return None
        body = request.message or ""
        if not body.isascii():
            return None
        lines = body.encode("ascii").splitlines()
        if lines and max(map(len, lines)) > _MAX_LINE:
            return None
        return b"".join(
            (
                f"{self._from_header}To: {address}\r\nSubject: {subject}\r\n"
                f"Message-ID: {self.message_id(request)}\r\n{_BODY_HEADERS}".encode("ascii"),
                b"\r\n".join(lines),
                b"\r\n",
            )
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        client = self.config.client()
        await client.connect()
        self._all.append(client)
        return client

    async def attempt(self, request: AttemptRequest) -> AttemptOutcome:
        plain = self.plain_bytes(request)
        message = self.build(request) if plain is None else None
        async with self._slots:
            for round_number in range(TRANSIENT_RETRIES + 1):
                try:
                    client = await self._connection()
                except (aiosmtplib.SMTPException, OSError) as err:
                    if round_number == TRANSIENT_RETRIES:
                        raise ConnectionError(
                            f"SMTP server unreachable: {type(err).__name__}"
                        ) from None
                    await asyncio.sleep(0.5 * 2**round_number)
                    continue
                try:
                    if plain is not None:
                        await client.sendmail(self._envelope_sender, [request.address], plain)
                    else:
                        await client.send_message(message)
                except aiosmtplib.SMTPRecipientsRefused as err:
                    self._idle.put_nowait(client)
                    code = err.recipients[0].code if err.recipients else 550
                    if 400 <= code < 500 and round_number < TRANSIENT_RETRIES:
                        await asyncio.sleep(0.2 * 2**round_number)
                        continue
                    return AttemptOutcome("bounced" if code >= 500 else "failed", str(code))
                except aiosmtplib.SMTPResponseException as err:
                    self._idle.put_nowait(client)
                    if 400 <= err.code < 500 and round_number < TRANSIENT_RETRIES:
                        await asyncio.sleep(0.2 * 2**round_number)
                        continue
                    return AttemptOutcome("failed", str(err.code))
                except (aiosmtplib.SMTPServerDisconnected, OSError):
                    if round_number == TRANSIENT_RETRIES:
                        raise ConnectionError("SMTP connection lost repeatedly") from None
                    continue
                self._idle.put_nowait(client)
                return AttemptOutcome("success", "250")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for client in self._all:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
        self._all.clear()


def _subject(request: AttemptRequest) -> str:
    """The subject on one line: a template filled with a contact's attributes may bring
    line breaks, which no header may carry (the `email` package refuses them)."""
    subject = request.subject or "A message from csm"
    if "\n" in subject or "\r" in subject:
        subject = " ".join(subject.splitlines())
    return subject


def _sender(sender: str) -> tuple[str, str | None]:
    """The envelope sender `send_message` would use, and the `From:` line if the `email`
    package writes one address unchanged (checked once per sender; None sends every
    message through `EmailMessage`)."""
    probe = EmailMessage()
    probe["From"] = sender
    envelope = extract_sender(probe) or sender
    try:
        written = flatten_message(probe).decode("ascii")
    except (ValueError, UnicodeError):
        return envelope, None
    line = f"From: {sender}\r\n"
    plain = len(probe["From"].addresses) == 1 and written == f"{line}\r\n"
    return envelope, line if plain else None
