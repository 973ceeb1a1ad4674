"""`show_list`: what a list holds, in counts only (no contact data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.lists.errors import UnknownListError


@dataclass
class ListSummary:
    name: str
    id: int
    contacts: int = 0
    devices: dict[str, int] = field(default_factory=dict)  # by kind
    contacts_without_devices: int = 0
    timezone_sources: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def show_list(engine: AsyncEngine, name: str) -> ListSummary:
    """Counts of list `name`: contacts, devices by kind, time-zone sources."""
    async with engine.connect() as connection:
        ident = await connection.scalar(
            text("SELECT id FROM lists WHERE name = :name"), {"name": name}
        )
        if ident is None:
            known = (
                (await connection.execute(text("SELECT name FROM lists ORDER BY name LIMIT 20")))
                .scalars()
                .all()
            )
            hint = f" (lists: {', '.join(known)})" if known else " (there are no lists yet)"
            raise UnknownListError(f"no list named {name!r}{hint}")
        summary = ListSummary(name=name, id=ident)
        params = {"list_id": ident}
        summary.contacts = (
            await connection.scalar(
                text("SELECT count(*) FROM list_members WHERE list_id = :list_id"), params
            )
            or 0
        )
        rows = await connection.execute(
            text(
                "SELECT d.kind, count(*) FROM list_members m "
                "JOIN devices d ON d.contact_id = m.contact_id "
                "WHERE m.list_id = :list_id GROUP BY d.kind ORDER BY d.kind"
            ),
            params,
        )
        summary.devices = {kind: count for kind, count in rows}
        summary.contacts_without_devices = (
            await connection.scalar(
                text(
                    "SELECT count(*) FROM list_members m WHERE m.list_id = :list_id "
                    "AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.contact_id = m.contact_id)"
                ),
                params,
            )
            or 0
        )
        rows = await connection.execute(
            text(
                "SELECT c.timezone_source, count(*) FROM list_members m "
                "JOIN contacts c ON c.id = m.contact_id "
                "WHERE m.list_id = :list_id GROUP BY 1 ORDER BY 2 DESC"
            ),
            params,
        )
        summary.timezone_sources = {source: count for source, count in rows}
    return summary
