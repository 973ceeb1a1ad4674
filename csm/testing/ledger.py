"""What the ledger says about caps: the accounts and devices that went over one.

Counted as the caps count (csm.compliance.gate.recent_attempts): real tries, and the
contact-level `unknown` rows a crash left (the attempt may have gone out), across every
campaign. For tests and benchmarks that check caps held under load.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.vocabulary import NOT_ATTEMPTED_CODES

_COUNTED = "(device_id <> 0 OR result = 'unknown') AND NOT (result = ANY(:skips))"


async def over_caps(
    engine: AsyncEngine, list_name: str, *, voice_max: int = 7, sms_max: int = 2
) -> tuple[int, int]:
    """(accounts with more than `voice_max` voice and dialer attempts, devices with more than
    `sms_max` texts in a UTC day) among the list's contacts, over every campaign. All of a
    test's or a bench's attempts fall within the 7 days of Regulation F's cap."""
    members = (
        "contact_id IN (SELECT m.contact_id FROM list_members m JOIN lists l"
        " ON l.id = m.list_id WHERE l.name = :list)"
    )
    arguments = {"skips": sorted(NOT_ATTEMPTED_CODES), "list": list_name}
    async with engine.connect() as connection:
        voice = await connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT contact_id FROM attempts"
                f" WHERE channel IN ('voice', 'dialer') AND {_COUNTED} AND {members}"
                " GROUP BY contact_id HAVING count(*) > :voice_max) o"
            ),
            {**arguments, "voice_max": voice_max},
        )
        sms = await connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT device_id FROM attempts"
                f" WHERE channel = 'sms' AND {_COUNTED} AND {members}"
                " GROUP BY device_id, attempted_at::date HAVING count(*) > :sms_max) o"
            ),
            {**arguments, "sms_max": sms_max},
        )
    return int(voice), int(sms)
