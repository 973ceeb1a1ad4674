"""The carrier's record: every call and message placed, per attempt key, kept across restarts.

This is the witness of csm's first guarantee: the record counts each placement per
attempt key and does NOT deduplicate, so a key counted twice is a key csm placed twice.
With a journal, each placement is appended to a file (one `write(2)` of one line with
O_APPEND, before the POST is answered), and a restarted carrier reads it back.

The journal holds no phone number: the recipient is kept as a digest (enough for the
list lookup's `To=` filter). A placement read back from the journal is finished as
its draw says (its callbacks died with the old process, as a carrier's would be lost).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def digest(number: str) -> str:
    """A phone number's stand-in in the journal and the lookup index."""
    return hashlib.blake2b(number.encode(), digest_size=10).hexdigest()


@dataclass(slots=True)
class Placement:
    """One call or message the carrier took; its status moves as the playout goes."""

    sid: str
    kind: str  # call | message
    key: str | None  # the attempt key from the callback URL (None: no key given)
    to: str | None  # None when read back from the journal
    to_digest: str
    from_: str
    created: datetime
    status: str = "queued"
    answered_by: str | None = None
    error_code: str | None = None
    duration: int | None = None  # seconds talked (calls, once completed)
    ended: datetime | None = None
    actions: list[str] = field(default_factory=list)  # what the answer URL's TwiML did
    sent: list[str] = field(default_factory=list)  # status callbacks, in the order sent

    def detail(self) -> dict[str, object]:
        """For `GET /_carrier/placements`: what happened, no phone number."""
        return {
            "sid": self.sid,
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
            "answered_by": self.answered_by,
            "error_code": self.error_code,
            "duration": self.duration,
            "actions": list(self.actions),
            "callbacks": list(self.sent),
        }


class Record:
    """Placements in memory (by SID, by key, by recipient) and, optionally, in a journal."""

    def __init__(self, journal: Path | None = None):
        self.journal = journal
        self.placements: Counter[str] = Counter()  # attempt key → POSTs that placed it
        self.refused: Counter[str] = Counter()  # attempt key → POSTs refused with a 4xx
        self.by_sid: dict[str, Placement] = {}
        self.by_key: dict[str, list[Placement]] = {}
        self.by_to: dict[str, list[Placement]] = {}
        self.bridged: dict[str, str] = {}  # attempt key → the address its call was dialled to
        self.calls = 0
        self.messages = 0
        self._fd: int | None = None

    def open(self) -> list[Placement]:
        """Read the journal back (if any) and open it for appending; the placements read."""
        if self.journal is None:
            return []
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        read: list[Placement] = []
        if self.journal.exists():
            with self.journal.open() as lines:
                for number, line in enumerate(lines, 1):
                    placement = _from_line(line, self.journal, number)
                    if placement is not None:
                        self._remember(placement)
                        read.append(placement)
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return read

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def add(self, placement: Placement) -> None:
        """A new placement: journaled first, then known."""
        if self._fd is not None:
            os.write(self._fd, _to_line(placement).encode())
        self._remember(placement)

    def refuse(self, key: str | None) -> None:
        if key:
            self.refused[key] += 1

    def _remember(self, placement: Placement) -> None:
        self.by_sid[placement.sid] = placement
        self.by_to.setdefault(placement.to_digest, []).append(placement)
        if placement.key:
            self.placements[placement.key] += 1
            self.by_key.setdefault(placement.key, []).append(placement)
        if placement.kind == "call":
            self.calls += 1
        else:
            self.messages += 1


_FIELDS = 6


def _to_line(placement: Placement) -> str:
    return (
        "\t".join(
            (
                placement.kind,
                placement.sid,
                placement.key or "",
                placement.to_digest,
                placement.from_,
                placement.created.isoformat(),
            )
        )
        + "\n"
    )


def _from_line(line: str, path: Path, number: int) -> Placement | None:
    text = line.rstrip("\n")
    if not text:
        return None
    parts = text.split("\t")
    if len(parts) != _FIELDS or parts[0] not in ("call", "message"):
        # a line cut short by a crash mid-write can only be the last: say so, skip it
        print(f"carrier journal {path}:{number}: not a placement line, skipped", flush=True)
        return None
    kind, sid, key, to_digest, from_, created = parts
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        when = datetime.now(UTC)
    return Placement(sid, kind, key or None, None, to_digest, from_, when)
