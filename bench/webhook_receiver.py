"""The webhook receiver under a carrier's load: callbacks/s and latency at a target rate.

Starts `csm webhooks` (uvicorn, its own process) on a fresh migrated database
(DATABASE_URL's server, else an embedded PostgreSQL), writes the provider_attempts
of N/4 calls, then POSTs N signed status callbacks (initiated, ringing, in-progress,
completed per call, in that order within a call) on an open-loop schedule at
`--rate` callbacks/s, as a carrier would, whatever the receiver's answer times. A
callback's latency runs from its scheduled time to its answer, so queueing counts.
Then the same callbacks again as fast as `--connections` connections allow (repeats: the
rank check answers them, changed false), for the receiver's ceiling.

    python bench/webhook_receiver.py --callbacks 20000 --rate 500

The issue's goal: p99 < 100 ms at 500 callbacks/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from csm.database import driver_connection, engine_for
from csm.providers.twilio.protocol import VOICE_STATUS_PATH, callback_url
from csm.providers.twilio.signature import sign
from csm.testing.servers import free_port, fresh_database

TOKEN = "bench-token"
STATUSES = ("initiated", "ringing", "in-progress", "completed")


def callbacks(public: str, calls: int) -> list[bytes]:
    """Every callback as raw HTTP/1.1 request bytes, signed, in send order."""
    host = urlsplit(public).netloc
    prepared = []
    for status in STATUSES:
        for call in range(calls):
            key = f"1-20261203-1-{call}-1-1"
            url = callback_url(public, VOICE_STATUS_PATH, key)
            form = {"CallSid": f"CA{call:032x}", "CallStatus": status, "AccountSid": "ACbench"}
            if status == "completed":
                form["AnsweredBy"] = "human"
            body = urlencode(form).encode()
            parts = urlsplit(url)
            head = (
                f"POST {parts.path}?{parts.query} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {sign(TOKEN, url, form)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            prepared.append(head.encode() + body)
    return prepared


class Connection:
    """One keep-alive HTTP/1.1 connection: a carrier's callback sender, minus the overhead of
    a general client (httpx's pool costs more CPU than the receiver on this 2-core machine)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> int:
        """POST one request; its HTTP status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    def close(self) -> None:
        self.writer.close()


async def at_rate(
    connections: list[Connection], requests: list[bytes], rate: float
) -> tuple[list[float], int]:
    """Open loop: request i is due at start + i/rate, and goes out on the first free
    connection. Latency (ms) runs from when it was due to its answer, queueing included."""
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def sender(connection: Connection) -> None:
        nonlocal failures
        while (item := await queue.get()) is not None:
            due, request = item
            failures += await connection.send(request) != 200
            latencies.append((time.perf_counter() - due) * 1000)

    senders = [asyncio.create_task(sender(connection)) for connection in connections]
    start = time.perf_counter() + 0.05
    for index, request in enumerate(requests):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        queue.put_nowait((due, request))
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    return latencies, failures


async def flat_out(connections: list[Connection], requests: list[bytes]) -> tuple[float, int]:
    """Closed loop, every connection sending its next callback as soon as one is answered:
    callbacks/s and failures."""
    queue = iter(requests)
    failures = 0

    async def sender(connection: Connection) -> None:
        nonlocal failures
        for request in queue:
            failures += await connection.send(request) != 200

    began = time.perf_counter()
    await asyncio.gather(*(sender(connection) for connection in connections))
    return len(requests) / (time.perf_counter() - began), failures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    calls = args.callbacks // len(STATUSES)
    async with fresh_database(os.environ.get("DATABASE_URL")) as url:
        async with engine_for(url) as engine, driver_connection(engine) as connection:
            await connection.execute(
                "INSERT INTO provider_attempts (attempt_key, sub_campaign_id, channel, provider)"
                " SELECT '1-20261203-1-' || n || '-1-1', 1, 'voice', 'twilio'"
                " FROM generate_series(0, $1 - 1) AS n",
                calls,
            )
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CSM_PUBLIC_URL": public,
            "CSM_TWILIO_AUTH_TOKEN": TOKEN,
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csm.cli", "webhooks", "--port", str(port), env=env
        )
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    try:
                        await http.get(f"{public}/twilio/health")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                requests = callbacks(public, calls)
                connections = [await Connection.open(port) for _ in range(args.connections)]
                latencies, failures = await at_rate(connections, requests, args.rate)
                p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
                print(
                    f"{len(requests)} callbacks at {args.rate:g}/s over {args.connections}"
                    f" connections: p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
                    f" max {max(latencies):.1f} ms, {failures} not 200"
                )
                cpu = cpu_seconds(server.pid)
                rate, failures = await flat_out(connections, requests)
                per_callback = (cpu_seconds(server.pid) - cpu) / len(requests) * 1000
                print(
                    f"flat out (the same callbacks again: repeats, changed false):"
                    f" {rate:,.0f} callbacks/s, {failures} not 200;"
                    f" the receiver's CPU {per_callback:.2f} ms a callback"
                )
                for connection in connections:
                    connection.close()
                counted = (await http.get(f"{public}/twilio/health")).json()
                print(f"receiver counts: {counted}")
        finally:
            server.terminate()
            await server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callbacks", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0, help="callbacks per second")
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections of the sender"
    )
    asyncio.run(main(parser.parse_args()))
