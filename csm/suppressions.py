"""Suppression lists: accounts and devices not to contact, in one campaign or in all.

Pass activities read them when each batch is loaded, just before its attempts.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from csm.campaigns import get_campaign
from csm.database import session_factory
from csm.errors import CsmError
from csm.tables import Contact, Suppression


class SuppressionError(CsmError):
    """A suppression that names nothing we know."""


async def add_suppression(
    engine: AsyncEngine,
    *,
    account: str | None = None,
    device: str | None = None,
    campaign: str | None = None,
    reason: str = "do_not_contact",
) -> int:
    """Suppress an account (by account key) or a device (normalised value); returns its id."""
    if (account is None) == (device is None):
        raise SuppressionError("name exactly one of an account or a device")
    async with session_factory(engine)() as session, session.begin():
        campaign_id = (await get_campaign(session, campaign)).id if campaign else None
        contact_id = None
        if account is not None:
            contact = (
                await session.exec(select(Contact).where(Contact.account_key == account))
            ).first()
            if contact is None:
                raise SuppressionError(f"unknown account {account!r}")
            contact_id = contact.id
        row = Suppression(
            campaign_id=campaign_id,
            contact_id=contact_id,
            device_value=device.strip().lower() if device else None,
            reason=reason,
        )
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def remove_suppression(engine: AsyncEngine, suppression_id: int) -> None:
    async with session_factory(engine)() as session, session.begin():
        result = await session.exec(delete(Suppression).where(Suppression.id == suppression_id))
        if result.rowcount == 0:
            raise SuppressionError(f"no suppression with id {suppression_id}")
