"""Inbound SMS: a reply that is exactly an opt-out keyword suppresses its sender everywhere.

`receive_sms` is the entry point a real SMS provider's inbound webhook calls
(and `csm inbound sms` in development).
"""

from __future__ import annotations

import unicodedata

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


async def receive_sms(
    engine: AsyncEngine, from_number: str, text: str, *, default_region: str = "US"
) -> bool:
    """An inbound SMS from `from_number`: an opt-out keyword suppresses the number everywhere.

    This is what a real SMS provider's inbound webhook calls. The message opts
    out when it is exactly one of the CTIA keywords (see `is_opt_out`); then
    the number gets a global phone suppression with reason `stop_reply` (kept
    as it is when the number was already suppressed). Returns whether the
    message opted out. A sender that is not a valid phone number is an error.
    """
    sender = Target.named("phone", from_number, default_region)
    if not is_opt_out(text):
        return False
    async with driver_connection(engine) as connection:
        await insert_one(connection, None, sender, STOP_REPLY)
    return True
