"""E-mail over real SMTP (aiosmtplib): pooled connections, bounded concurrency, stable Message-IDs.

4xx replies are retried a few times with a short backoff; 5xx replies are
final: `bounced` when the server refused the recipient, else `failed`.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib

from csm.channels.base import AttemptOutcome, AttemptRequest
from csm.smtp import SmtpConfig

TRANSIENT_RETRIES = 3


class SmtpEmail:
    """A pool of `connections` reused SMTP sessions; at most that many messages in flight."""

    def __init__(self, config: SmtpConfig, *, connections: int = 10, domain: str = "csm.local"):
        self.config = config
        self.domain = domain
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(connections)
        self._all: list[aiosmtplib.SMTP] = []

    def message_id(self, request: AttemptRequest) -> str:
        return f"<{request.attempt_key}@{self.domain}>"

    def build(self, request: AttemptRequest) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = request.address
        message["Subject"] = request.subject or "A message from csm"
        message["Message-ID"] = self.message_id(request)
        message.set_content(request.message or "")
        return message

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
        message = self.build(request)
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
