"""Inbound SMS: a reply that is exactly an opt-out keyword suppresses its sender everywhere.

`record_sms` is the one path every inbound text takes, inside its caller's
transaction: the webhook receiver (csm.webhooks, a carrier's signed inbound
webhook) calls it on its own connection, and `receive_sms` (`csm inbound sms`
in development) on one it opens. Each text is kept in `inbound_messages` (ids and
whether it opted out, with the time received: never its sender or words), once
per provider message id, so a carrier repeating a webhook changes nothing.
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import driver_connection
from csm.suppressions.store import insert_one
from csm.suppressions.targets import STOP_REPLY, Target

#: The CTIA standard opt-out keywords: a message that is exactly one of them opts out.
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})


def is_opt_out(text: str) -> bool:
    """Is this inbound SMS an opt-out? Only when the whole message is one CTIA keyword.

    Case does not matter, and white space, punctuation and invisible format
    characters around the word are ignored: "STOP", " stop. " and "Stop!" opt
    out. A keyword inside a sentence does not ("please stop calling", "stop it"):
    carriers and the CTIA handbook treat only the bare keyword as the standard
    opt-out, and a sentence may well be about something else ("don't stop").
    """
    start, end = 0, len(text)
    while start < end and _ignorable(text[start]):
        start += 1
    while end > start and _ignorable(text[end - 1]):
        end -= 1
    return text[start:end].upper() in OPT_OUT_KEYWORDS


def _ignorable(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] == "P" or unicodedata.category(ch) == "Cf"


@dataclass(frozen=True)
class Received:
    """What one inbound text did: whether it is new (not a repeat of its message id) and
    whether it opted its sender out."""

    new: bool
    opted_out: bool


async def record_sms(
    connection: asyncpg.Connection, *, provider: str, sid: str, sender: Target, text: str
) -> Received:
    """Keep one inbound text and, when it is an opt-out, suppress its sender everywhere.

    Runs in the caller's transaction. A message id seen before changes nothing (the
    carrier repeated its webhook): `new` is False and the suppression, if any, was
    made the first time. An opt-out gets a global phone suppression with reason
    `stop_reply` (kept as it is when the number was already suppressed).
    """
    opted_out = is_opt_out(text)
    inserted = await connection.fetchval(
        "INSERT INTO inbound_messages (provider, sid, opted_out) VALUES ($1, $2, $3)"
        " ON CONFLICT (sid) DO NOTHING RETURNING true",
        provider,
        sid,
        opted_out,
    )
    if not inserted:
        return Received(new=False, opted_out=opted_out)
    if opted_out:
        await insert_one(connection, None, sender, STOP_REPLY)
    return Received(new=True, opted_out=opted_out)


async def receive_sms(
    engine: AsyncEngine, from_number: str, text: str, *, default_region: str = "US"
) -> bool:
    """An inbound SMS from `from_number` without a carrier (`csm inbound sms`): recorded as
    provider `cli` under a fresh message id by `record_sms`, which suppresses the number
    everywhere on an opt-out keyword (see `is_opt_out`). Returns whether the message opted
    out. A sender that is not a valid phone number is an error.
    """
    sender = Target.named("phone", from_number, default_region)
    async with driver_connection(engine) as connection, connection.transaction():
        received = await record_sms(
            connection, provider="cli", sid=f"cli-{uuid.uuid4().hex}", sender=sender, text=text
        )
    return received.opted_out
