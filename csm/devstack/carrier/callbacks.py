"""The carrier's side of the webhooks: signed form POSTs, retried on connection failure.

Each request is signed as Twilio signs it: `X-Twilio-Signature` over the full URL
(query included) and the sorted form parameters (csm.providers.twilio.signature).
A request that cannot connect or gets a 5xx is retried a few times with backoff, then
counted failed (Twilio itself does not retry; the adapter's deadline lookup covers a
callback that never arrived). One pooled httpx.AsyncClient serves every request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from csm.devstack.carrier.faults import Faults
from csm.providers.twilio.signature import sign

FORM = "application/x-www-form-urlencoded"


@dataclass
class CallbackCounts:
    sent: int = 0  # requests the receiver answered (any status below 500)
    failed: int = 0  # given up after the retries (no connection, or 5xx every time)
    refused: int = 0  # answered with a 4xx (e.g. 403: the receiver did not take the signature)
    lost: int = 0  # status callbacks dropped on purpose (lose_callbacks fault)
    repeated: int = 0  # extra copies sent on purpose (repeat_callbacks fault)


class CallbackSender:
    """Sends signed webhooks for one account."""

    def __init__(
        self,
        auth_token: str,
        client: httpx.AsyncClient,
        faults: Faults,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        concurrency: int = 64,
    ):
        self.auth_token = auth_token
        self.client = client
        self.faults = faults
        self.retries = retries
        self.backoff = backoff
        self.counts = CallbackCounts()
        # at most the pool's size in flight: with thousands of requests queued inside it,
        # httpx's pool spends its time scanning the queue (quadratic), not sending
        self._slots = asyncio.Semaphore(concurrency)

    async def status(self, url: str, params: dict[str, str]) -> None:
        """A status callback, subject to the lose/repeat faults."""
        if self.faults.lose():
            self.counts.lost += 1
            return
        await self.post(url, params)
        if self.faults.repeat():
            self.counts.repeated += 1
            await self.post(url, params)

    async def post(self, url: str, params: dict[str, str]) -> httpx.Response | None:
        """POST the signed form; the response, or None once the retries are spent."""
        headers = {"X-Twilio-Signature": sign(self.auth_token, url, params), "Content-Type": FORM}
        body = urlencode(params)
        for attempt in range(self.retries + 1):
            try:
                async with self._slots:
                    response = await self.client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code < 500:
                self.counts.sent += 1
                if response.status_code >= 400:
                    self.counts.refused += 1
                return response
            if attempt < self.retries:
                await asyncio.sleep(self.backoff * 2**attempt)
        self.counts.failed += 1
        return None
