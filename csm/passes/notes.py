"""Why the pass waits, told to its workflow (signal `pass_note`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import timedelta

from temporalio import activity

from csm.plan import WaitNote

#: How long sending a pass's note to its workflow may take.
NOTE_TIMEOUT = timedelta(seconds=5)


class Notes:
    """Why the pass waits, told to its workflow (signal `pass_note`) when it changes: the
    note `csm status`, the web page and the Temporal UI show, "" once the pass works again.

    Signals go out in order, one at a time, and never hold up the pass: a note that cannot
    be sent is logged and dropped (the pass's work does not depend on it). Without a
    Temporal client (a pass run directly, as benchmarks do) notes are kept, not sent.
    """

    def __init__(self, pass_number: int) -> None:
        self.pass_number = pass_number
        self.shown = ""
        self._sent: asyncio.Future[None] | None = None
        try:
            info = activity.info()
            client = activity.client()
        except RuntimeError:
            self._handle = None
        else:
            self._handle = client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)

    def set(self, note: str) -> None:
        if note == self.shown:
            return
        self.shown = note
        if self._handle is not None:
            self._sent = asyncio.ensure_future(self._send(self._sent, note))

    async def _send(self, previous: asyncio.Future[None] | None, note: str) -> None:
        if previous is not None:
            await previous
        assert self._handle is not None
        try:
            await self._handle.signal(
                "pass_note", WaitNote(self.pass_number, note), rpc_timeout=NOTE_TIMEOUT
            )
        except Exception as error:  # whatever it is, a lost note must not fail the pass
            activity.logger.warning("pass %s: note not sent: %s", self.pass_number, error)

    async def sent(self) -> None:
        """Wait for the notes in flight (before the activity returns)."""
        if self._sent is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._sent)


#: The running pass's notes (each activity task has its own).
_notes: ContextVar[Notes | None] = ContextVar("csm_pass_notes", default=None)


def note(text: str) -> None:
    """Set the running pass's note (nothing outside a pass)."""
    if (notes := _notes.get()) is not None:
        notes.set(text)


@contextlib.asynccontextmanager
async def noting(pass_number: int) -> AsyncIterator[Notes]:
    """The pass's notes while it runs; the notes in flight are sent before it returns."""
    notes = Notes(pass_number)
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)
        await notes.sent()
