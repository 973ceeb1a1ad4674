"""The attempt ledger's row: one attempt (or skip) as a batch writes it with COPY.

Its own module so that what reads rows (metrics, the pass engine) names their fields
without the ledger's statements; `csm.ledger` writes them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple


class AttemptRow(NamedTuple):
    """One ledger row, in `ATTEMPT_COLUMNS` order (a tuple, so COPY takes it as it is)."""

    sub_campaign_id: int
    campaign_id: int
    day: date
    pass_number: int
    contact_id: int
    device_id: int  # 0: no device (a skip, or `unknown` settled for the contact)
    try_number: int
    channel: str
    result: str
    skip_reason: str | None
    attempted_at: datetime


#: The `attempts` columns a batch COPYs, in the order of AttemptRow's fields.
ATTEMPT_COLUMNS = AttemptRow._fields
