"""A bare callback sink for bench/provider_pass.py's ceiling: it only counts final statuses.

The ceiling's calls and messages name this sink in their StatusCallback and Url, so the
carrier calls it back instead of csm's receiver. It neither checks signatures nor writes
anything: each status callback is parsed just enough to see the attempt key and the
status, and the first final status of a key is pushed, as a line, to every client of
`GET /finals` (a streamed response: the ceiling's loop resolves its waiting lanes from
it without polling). The answer URL gets a fixed `<Say>`. It runs as a process of its
own, like `csm webhooks` on the pass side, so neither side's client shares its CPU.

    python bench/callback_sink.py --port 8499
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csm.providers.twilio.protocol import (
    SMS_STATUS_PATH,
    VOICE_ANSWER_PATH,
    VOICE_STATUS_PATH,
    is_final,
)
from csm.vocabulary import Channel

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

TWIML = b"<Response><Say>Hello, this is a payment reminder.</Say></Response>"
STATUS_FIELD = {VOICE_STATUS_PATH: "CallStatus", SMS_STATUS_PATH: "MessageStatus"}
CHANNEL = {VOICE_STATUS_PATH: Channel.VOICE, SMS_STATUS_PATH: Channel.SMS}


class Sink:
    """Keys that reached a final status, and the streams that want to hear of them."""

    def __init__(self) -> None:
        self.finals: set[str] = set()
        self.callbacks = 0
        self.listeners: list[asyncio.Queue[bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/finals":
            await self._stream(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path in STATUS_FIELD:
            self.callbacks += 1
            key = parse_qs(scope["query_string"].decode()).get("key", [""])[0]
            status = parse_qs(body.decode()).get(STATUS_FIELD[path], [""])[0]
            if is_final(CHANNEL[path], status) and key not in self.finals:
                self.finals.add(key)
                line = key.encode() + b"\n"
                for queue in self.listeners:
                    queue.put_nowait(line)
            await _answer(send, b"", b"text/plain")
        elif path == VOICE_ANSWER_PATH:
            await _answer(send, TWIML, b"text/xml")
        elif path == "/count":
            await _answer(send, f"{len(self.finals)} {self.callbacks}".encode(), b"text/plain")
        else:
            await _answer(send, b"not here", b"text/plain", 404)

    async def _stream(self, receive: Receive, send: Send) -> None:
        """Stream final keys until the client goes (then the server can stop)."""
        pushing = asyncio.create_task(self._push(send))
        while (await receive())["type"] != "http.disconnect":
            pass
        pushing.cancel()

    async def _push(self, send: Send) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.listeners.append(queue)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"ready\n", "more_body": True})
        try:
            while True:
                lines = [await queue.get()]
                while not queue.empty():
                    lines.append(queue.get_nowait())
                await send(
                    {"type": "http.response.body", "body": b"".join(lines), "more_body": True}
                )
        finally:
            self.listeners.remove(queue)


async def _answer(send: Send, body: bytes, kind: bytes, status: int = 200) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(Sink(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
