"""The outcome board: where placed attempts wait for what the carrier said back.

The carrier answers through webhooks, which the receiver (csm.webhooks) writes into
`provider_attempts`. Thousands of attempts may wait at once; each polling the table on
its own would cost a connection and a query each. Instead one background task per
provider asks, every `interval`, about *all* awaited keys in ONE short query on a pooled
connection it gives back at once (nothing is held between ticks), and resolves the
waiters whose row is ready: a final status, a settled row, or (on a bridged pass) a live
answer waiting for csm's agent decision.

A waiter heartbeats its Temporal activity while it waits (a heartbeat is how a pause,
a stop or a dead worker reaches a pass); the details are not used for resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from csm.lookups import driver_connection
from csm.providers.twilio.protocol import FINAL_RANK, LIVE_ANSWERS
from csm.providers.twilio.rows import Row

log = logging.getLogger(__name__)

#: How often the board looks (seconds) and how often a waiter heartbeats.
POLL_INTERVAL = 0.04
HEARTBEAT_EVERY = 1.0

READY_SQL = f"""
SELECT attempt_key, sid, state, status, status_rank, answered_by, error_code, result,
       connect_to
FROM provider_attempts
WHERE attempt_key = ANY($1::text[])
  AND (status_rank >= {FINAL_RANK} OR state = 'settled'
       OR (bridge AND connect_to IS NULL
           AND answered_by IN ({", ".join(f"'{a}'" for a in sorted(LIVE_ANSWERS))})))
"""


def heartbeat() -> None:
    """Heartbeat the running activity, if any (tests and scripts wait outside one)."""
    if activity.in_activity():
        activity.heartbeat()


class OutcomeBoard:
    """Futures for awaited attempt keys, resolved by one poll task."""

    def __init__(self, engine: AsyncEngine, *, interval: float = POLL_INTERVAL) -> None:
        self._engine = engine
        self._interval = interval
        self._waiting: dict[str, list[asyncio.Future[Row]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0  # queries made: tests check the board batches its keys

    async def wait(self, key: str, deadline: float) -> Row | None:
        """The attempt's row once ready, or None at `deadline` (time.monotonic())."""
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self._ensure_polling()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                done, _ = await asyncio.wait({future}, timeout=min(left, HEARTBEAT_EVERY))
                if done:
                    return future.result()
                heartbeat()
        finally:
            self._forget(key, future)

    def _forget(self, key: str, future: asyncio.Future[Row]) -> None:
        futures = self._waiting.get(key)
        if futures is None:
            return
        if future in futures:
            futures.remove(future)
        if not futures:
            del self._waiting[key]
        if not future.done():
            future.cancel()

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._poll(), name="twilio outcome board"
            )

    async def _poll(self) -> None:
        """Tick while anyone waits; end when no one does (the next waiter restarts it)."""
        failures = 0
        while self._waiting:
            await asyncio.sleep(self._interval)
            keys = list(self._waiting)
            if not keys:
                break
            try:
                async with driver_connection(self._engine) as connection:
                    records = await connection.fetch(READY_SQL, keys)
            except Exception as error:  # PostgreSQL restarting: keep waiting, say so once
                failures += 1
                if failures == 1:
                    log.warning("outcome board: reading provider_attempts failed: %r", error)
                continue
            failures = 0
            self.ticks += 1
            for record in records:
                row = Row(**dict(record))
                for future in self._waiting.get(row.attempt_key, ()):
                    if not future.done():
                        future.set_result(row)

    async def close(self) -> None:
        task, self._task = self._task, None
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
