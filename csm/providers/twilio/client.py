"""Twilio's REST API (or a compatible one) over one pooled httpx client.

What the adapter (csm.providers.twilio.adapter) needs and no more: place a call, send a
message, look one up by its SID, and list an account's calls or messages to one number
(the reconciliation of a POST whose answer was lost).

Retries are about *never placing an attempt twice*:
- 429 and 5xx, and a connection that could not be opened, are retried with backoff until
  the caller's deadline: the carrier did not take the request.
- a connection that broke after a POST was sent may have placed it: the POST is never
  repeated (`Unsure`); the adapter finds out from callbacks or a lookup.
- a refused 4xx is never retried (`Refused`); 401/403 (and a 404 on the account's own
  collections) say the settings are wrong (`ConfigurationError`).

Phone numbers and message text are personal data: they go in request bodies and list
filters only, never in a log line or an exception (a Twilio error *message* can quote the
number, so only its code is kept).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from csm.errors import CsmError
from csm.providers.twilio.board import heartbeat
from csm.providers.twilio.protocol import API_VERSION

log = logging.getLogger(__name__)

#: Backoff between retries: first delay and cap (seconds); each delay is jittered.
BACKOFF_FIRST = 0.2
BACKOFF_CAP = 5.0
#: Idle pooled connections are dropped before a server's usual 5 s keep-alive ends, so a
#: POST rarely meets a connection the server just closed (which would make it `Unsure`).
KEEPALIVE_EXPIRY = 2.0
#: Statuses that mean "not taken, try again later".
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Transport errors raised before any byte of the request left: safe to repeat any request.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ConfigurationError(CsmError):
    """The account refused us as a whole: the settings are wrong, not the attempt."""


class Refused(Exception):
    """The carrier refused this one request with a 4xx (never retried).

    `code` is Twilio's error code (e.g. "21211" invalid number, "21610" unsubscribed), as
    text like the callbacks' ErrorCode, or None when the body had none."""

    def __init__(self, code: str | None, status: int) -> None:
        super().__init__(f"the carrier refused the request: HTTP {status}, code {code}")
        self.code = code
        self.status = status


class Unreachable(ConnectionError):
    """The carrier could not be reached, or turned every try away, until the deadline.
    For a POST: nothing was placed (the pass's outage loop may try again)."""


class Unsure(Exception):
    """A POST's connection broke after it was sent: the carrier may have placed it.
    Never POST it again without a lookup."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A call or message as the carrier describes it (ids and codes only)."""

    sid: str
    status: str | None
    answered_by: str | None
    error_code: str | None
    created: datetime | None  # date_created, when the carrier gives it

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Resource:
        code = body.get("error_code")
        return cls(
            sid=str(body["sid"]),
            status=body.get("status"),
            answered_by=body.get("answered_by"),
            error_code=None if code in (None, "") else str(code),
            created=_timestamp(body.get("date_created")),
        )


def _timestamp(value: object) -> datetime | None:
    """Twilio writes RFC 2822 dates ("Tue, 31 Aug 2010 20:36:28 +0000"); take ISO too."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return None if code is None else str(code)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class TwilioClient:
    """One account's REST client: pooled connections, Basic auth, bounded retries."""

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        *,
        # A POST takes milliseconds, so 20 connections carry hundreds of attempts a second;
        # a bigger pool costs more than it gives: httpcore checks every pooled connection
        # on each request (100 made the pass side of bench/provider_pass.py 8 % slower).
        max_connections: int = 20,
        timeout: float = 5.0,  # under the pass activity's 10 s heartbeat timeout
    ) -> None:
        if not account_sid:
            raise ConfigurationError("CSM_TWILIO_ACCOUNT_SID is empty: set the account's SID")
        self.account_sid = account_sid
        self.base_url = base_url.rstrip("/")
        self._account = f"{self.base_url}/{API_VERSION}/Accounts/{account_sid}"
        # httpx logs every request's URL at INFO, and a list lookup's URL holds a phone
        # number: its log stays at WARNING and above.
        httpx_log = logging.getLogger("httpx")
        if httpx_log.getEffectiveLevel() < logging.WARNING:
            httpx_log.setLevel(logging.WARNING)
        self._http = httpx.AsyncClient(
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        )

    async def close(self) -> None:
        await self._http.aclose()

    # ---- placing ---------------------------------------------------------------------

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        deadline: float,
        machine_detection: str = "DetectMessageEnd",
    ) -> Resource:
        """Place a call (`deadline`: time.monotonic() after which no retry starts)."""
        form: dict[str, str | list[str]] = {
            "To": to,
            "From": from_,
            "Url": url,
            "StatusCallback": status_callback,
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "MachineDetection": machine_detection,
        }
        return await self._create("Calls.json", form, deadline)

    async def create_message(
        self, *, to: str, from_: str, body: str, status_callback: str, deadline: float
    ) -> Resource:
        """Send an SMS (`deadline` as for create_call)."""
        form: dict[str, str | list[str]] = {
            "To": to,
            "From": from_,
            "Body": body,
            "StatusCallback": status_callback,
        }
        return await self._create("Messages.json", form, deadline)

    async def _create(
        self, collection: str, form: Mapping[str, str | list[str]], deadline: float
    ) -> Resource:
        url = f"{self._account}/{collection}"
        try:
            response = await self._send("POST", url, deadline, data=form)
        except (httpx.TransportError, httpx.StreamError) as error:
            # sent, then the connection broke: the carrier may hold the request
            raise Unsure(f"POST {collection}: {type(error).__name__} after sending") from None
        if response.status_code in (200, 201):
            return Resource.of(response.json())
        self._refuse(response, collection, account_level=True)
        raise AssertionError("unreachable")  # _refuse always raises

    # ---- looking up ------------------------------------------------------------------

    async def fetch_call(self, sid: str, *, deadline: float) -> Resource | None:
        """The call `sid` as the carrier has it now; None when it does not know it."""
        return await self._fetch(f"Calls/{sid}.json", deadline)

    async def fetch_message(self, sid: str, *, deadline: float) -> Resource | None:
        return await self._fetch(f"Messages/{sid}.json", deadline)

    async def _fetch(self, path: str, deadline: float) -> Resource | None:
        response = await self._get(f"{self._account}/{path}", deadline)
        if response.status_code == 404:
            return None
        if response.status_code == 200:
            return Resource.of(response.json())
        self._refuse(response, path.split("/")[0], account_level=False)
        raise AssertionError("unreachable")

    async def find_calls(
        self, *, to: str, from_: str, since: date, deadline: float
    ) -> list[Resource]:
        """The account's calls to `to` from `from_` started on or after `since`."""
        params = {"To": to, "From": from_, "StartTime>=": since.isoformat(), "PageSize": "100"}
        return await self._list("Calls.json", "calls", params, deadline)

    async def find_messages(
        self, *, to: str, from_: str, since: date, deadline: float
    ) -> list[Resource]:
        """The account's messages to `to` from `from_` sent on or after `since`."""
        params = {"To": to, "From": from_, "DateSent>=": since.isoformat(), "PageSize": "100"}
        return await self._list("Messages.json", "messages", params, deadline)

    async def _list(
        self, collection: str, field: str, params: dict[str, str], deadline: float
    ) -> list[Resource]:
        # Twilio's range filters are keys ending in ">=" ("StartTime>="), sent URL-encoded
        response = await self._get(f"{self._account}/{collection}", deadline, params=params)
        if response.status_code == 200:
            return [Resource.of(item) for item in response.json().get(field, [])]
        self._refuse(response, collection, account_level=True)
        raise AssertionError("unreachable")

    async def _get(self, url: str, deadline: float, **kwargs: Any) -> httpx.Response:
        """A GET, retried on any transport error too (looking is always safe to repeat)."""
        tries = 0
        while True:
            try:
                return await self._send("GET", url, deadline, **kwargs)
            except (httpx.TransportError, httpx.StreamError) as error:
                tries += 1
                if not await self._backoff(tries, deadline, None):
                    raise Unreachable(f"GET: {type(error).__name__} until the deadline") from None

    # ---- the one place requests go out -----------------------------------------------

    async def _send(self, method: str, url: str, deadline: float, **kwargs: Any) -> httpx.Response:
        """Send, retrying 429/5xx answers and connections never opened, until `deadline`.
        Other transport errors are raised to the caller (who knows if a repeat is safe)."""
        tries = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(method, url, **kwargs)
            except NOT_SENT as error:
                reason = type(error).__name__
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                reason = f"HTTP {response.status_code}"
            tries += 1
            if not await self._backoff(tries, deadline, response):
                raise Unreachable(
                    f"the carrier at {self.base_url} did not take the request until the"
                    f" deadline ({tries} tries, last: {reason})"
                )
            log.debug("twilio %s retried after %s (try %d)", method, reason, tries)

    @staticmethod
    async def _backoff(tries: int, deadline: float, response: httpx.Response | None) -> bool:
        """Sleep before try `tries + 1`; False (no sleep) when it would pass the deadline."""
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (tries - 1)) * (0.5 + random.random() / 2)
        delay = max(delay, _retry_after(response) or 0.0)
        if time.monotonic() + delay > deadline:
            return False
        await asyncio.sleep(delay)
        heartbeat()  # retries may last minutes: the activity must still look alive
        return True

    def _refuse(self, response: httpx.Response, what: str, *, account_level: bool) -> None:
        status = response.status_code
        code = _error_code(response)
        if status in (401, 403):
            raise ConfigurationError(
                f"the carrier at {self.base_url} refused account {self.account_sid} (HTTP"
                f" {status}, code {code}): check CSM_TWILIO_ACCOUNT_SID and CSM_TWILIO_AUTH_TOKEN"
            )
        if status == 404 and account_level:
            raise ConfigurationError(
                f"the carrier at {self.base_url} has no {what} for account {self.account_sid}"
                " (HTTP 404): check CSM_TWILIO_BASE_URL and CSM_TWILIO_ACCOUNT_SID"
            )
        raise Refused(code, status)
