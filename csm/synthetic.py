"""Seeded synthetic contact lists for the demo, tests and benchmarks.

Numbers come from the 555-01xx range reserved for fiction and addresses from
example.com, so nothing generated can reach a real person.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ZONES = (
    ("America/New_York", "212"),
    ("America/Chicago", "312"),
    ("America/Denver", "303"),
    ("America/Los_Angeles", "213"),
    ("America/Phoenix", "602"),
)
STATES = ("NY", "IL", "CO", "CA", "AZ", "TX", "FL")


@dataclass(frozen=True)
class SyntheticList:
    list_id: int
    contacts: int


async def create_synthetic_list(
    engine: AsyncEngine, name: str, *, contacts: int, seed: int = 1, email_share: float = 0.8
) -> SyntheticList:
    """A list of `contacts` contacts (wireless, often a landline, usually an e-mail) via COPY."""
    rng = random.Random(seed)
    prefix = f"syn{seed}-{name}-"
    async with engine.begin() as connection:
        list_id = await connection.scalar(
            text(
                "INSERT INTO lists (name) VALUES (:n) ON CONFLICT (name) DO UPDATE SET name = "
                "EXCLUDED.name RETURNING id"
            ),
            {"n": name},
        )
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        first_id = await driver.fetchval("SELECT nextval(pg_get_serial_sequence('contacts', 'id'))")
        await driver.execute(
            "SELECT setval(pg_get_serial_sequence('contacts', 'id'), $1)", first_id + contacts
        )
        contact_rows, device_rows, member_rows = [], [], []
        for n in range(contacts):
            contact_id = first_id + n
            zone, area = ZONES[rng.randrange(len(ZONES))]
            attributes = {
                "balance": round(rng.uniform(20, 2000), 2),
                "days_past_due": rng.randrange(0, 120),
                "state": rng.choice(STATES),
                "first_name": f"Customer{n}",
            }
            contact_rows.append(
                (
                    contact_id,
                    f"{prefix}{n:07d}",
                    zone,
                    "file",
                    None,
                    rng.random() < 0.97,
                    rng.random() < 0.9,
                    True,
                    json.dumps(attributes),
                )
            )
            position = 1
            exchange = 100 + (contact_id // 100) % 900
            device_rows.append(
                (
                    contact_id,
                    position,
                    "wireless",
                    f"+1{area}{exchange:03d}{contact_id % 10000:04d}",
                )
            )
            if rng.random() < 0.5:
                position += 1
                device_rows.append(
                    (
                        contact_id,
                        position,
                        "landline",
                        f"+1{area}{(exchange + 1) % 900 + 100:03d}{contact_id % 10000:04d}",
                    )
                )
            if rng.random() < email_share:
                position += 1
                device_rows.append(
                    (contact_id, position, "email", f"customer{contact_id}@example.com")
                )
            member_rows.append((list_id, contact_id))
        await driver.copy_records_to_table(
            "contacts",
            records=contact_rows,
            columns=(
                "id",
                "account_key",
                "timezone",
                "timezone_source",
                "postal_code",
                "consent_voice",
                "consent_sms",
                "consent_email",
                "attributes",
            ),
        )
        await driver.copy_records_to_table(
            "devices", records=device_rows, columns=("contact_id", "position", "kind", "value")
        )
        await driver.copy_records_to_table(
            "list_members", records=member_rows, columns=("list_id", "contact_id")
        )
    return SyntheticList(list_id=list_id, contacts=contacts)
