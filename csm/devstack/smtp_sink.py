"""A local SMTP sink: accepts every message and stores it as an `.eml` file.

Run as `python -m csm.devstack.smtp_sink --dir DIR --port 1025`. The same
handler serves the tests, which read what arrived from the directory.
Benchmarks use the counting mode instead (`CountingHandler`, in a process of
its own): a file per message would make the sink the thing being measured.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
import time
from pathlib import Path
from typing import Protocol

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """Writes each accepted message to `directory` atomically, envelope first."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            number = next(self._counter)
        name = f"{time.time_ns()}-{os.getpid()}-{number:06d}.eml"
        header = f"X-Envelope-From: {envelope.mail_from}\r\n" + "".join(
            f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos
        )
        content = envelope.original_content or b""
        partial = self.directory / f".{name}.part"
        partial.write_bytes(header.encode() + content)
        partial.rename(self.directory / name)
        return "250 Message accepted for delivery"


class CountingHandler:
    """Accepts every message and only counts it, in `counter.value` (e.g. a
    `multiprocessing.Value`, so another process can read it)."""

    def __init__(self, counter: MessageCount):
        self.counter = counter

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.counter.value += 1
        return "250 Message accepted for delivery"


class MessageCount(Protocol):
    value: int


def serve_counting(
    host: str, port: int, counter: MessageCount, ready: EventLike, stop: EventLike
) -> None:
    """A process's main: a counting sink on host:port until `stop` is set."""
    controller = Controller(CountingHandler(counter), hostname=host, port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class EventLike(Protocol):
    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def messages(directory: Path) -> list[Path]:
    """The stored messages, oldest first."""
    return sorted(directory.glob("*.eml"))


def start_sink(directory: Path, host: str, port: int) -> Controller:
    controller = Controller(MaildirHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink storing messages as .eml files")
    parser.add_argument("--dir", type=Path, required=True, help="where messages are stored")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    controller = start_sink(args.dir, args.host, args.port)
    print(f"smtp sink on {args.host}:{args.port} storing into {args.dir}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
