"""The database side of an import: staging tables filled by COPY, then set-based upserts.

Everything runs on one connection inside one transaction, so a failure or
Ctrl-C at any point leaves contacts, devices and lists exactly as before.
Imports take a transaction-level advisory lock and so run one at a time:
that is what lets new contacts, devices and memberships be inserted without
`ON CONFLICT` (cheaper) and keeps two imports of the same accounts from
deadlocking.

Temporary tables are never analysed by autovacuum, so each batch analyses
the staging tables' join keys itself: without statistics the planner guesses
each key matches hundreds of rows and picks sort-heavy plans.

All user data travels as COPY data or bind parameters; the only SQL text
that varies is chosen from constants in this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

#: pg_advisory_xact_lock key of list imports ("csml").
IMPORT_LOCK = 0x63736D6C

CONTACT_COLUMNS = (
    "line",
    "account_key",
    "timezone",
    "timezone_source",
    "postal_code",
    "consent_voice",
    "consent_sms",
    "consent_email",
    "attributes",
)
DEVICE_COLUMNS = ("line", "position", "kind", "value")

_CREATE_STAGING = """
CREATE TEMP TABLE import_contacts (
    line integer NOT NULL,
    account_key text NOT NULL,
    timezone text,
    timezone_source text NOT NULL,
    postal_code text,
    consent_voice boolean,
    consent_sms boolean,
    consent_email boolean,
    attributes jsonb NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_devices (
    line integer NOT NULL,
    position smallint NOT NULL,
    kind text NOT NULL,
    value text NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_ids (
    line integer NOT NULL,
    contact_id bigint NOT NULL,
    existed boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_changed (contact_id bigint NOT NULL) ON COMMIT DROP;
"""

#: Row counts and the join keys' statistics, which the join plans need; only the key
#: columns, as statistics on text and jsonb columns cost more than the joins save.
_ANALYZE_STAGING = "ANALYZE import_contacts (line); ANALYZE import_devices (line)"

_EXISTING = """
INSERT INTO import_ids (line, contact_id, existed)
SELECT s.line, c.id, true FROM import_contacts s JOIN contacts c ON c.account_key = s.account_key
"""

#: An existing contact keeps its stored zone when the file gives none, or only an inferred
#: one while the stored zone came from a file: a zone someone wrote down beats a guess.
_KEEP_ZONE = "(n.timezone IS NULL OR (n.timezone_source <> 'file' AND c.timezone_source = 'file'))"

_UPDATE_EXISTING = f"""
WITH incoming AS (
    SELECT i.contact_id, s.timezone, s.timezone_source, s.postal_code,
           s.consent_voice, s.consent_sms, s.consent_email, s.attributes
    FROM import_contacts s JOIN import_ids i ON i.line = s.line
    WHERE i.existed
), changed AS (
    UPDATE contacts c SET
        timezone = CASE WHEN {_KEEP_ZONE} THEN c.timezone ELSE n.timezone END,
        timezone_source = CASE WHEN {_KEEP_ZONE} THEN c.timezone_source
                               ELSE n.timezone_source END,
        postal_code = coalesce(n.postal_code, c.postal_code),
        consent_voice = coalesce(n.consent_voice, c.consent_voice),
        consent_sms = coalesce(n.consent_sms, c.consent_sms),
        consent_email = coalesce(n.consent_email, c.consent_email),
        attributes = c.attributes || n.attributes,
        updated_at = now()
    FROM incoming n
    WHERE c.id = n.contact_id
      AND (c.timezone, c.timezone_source, c.postal_code,
           c.consent_voice, c.consent_sms, c.consent_email, c.attributes)
          IS DISTINCT FROM
          (CASE WHEN {_KEEP_ZONE} THEN c.timezone ELSE n.timezone END,
           CASE WHEN {_KEEP_ZONE} THEN c.timezone_source ELSE n.timezone_source END,
           coalesce(n.postal_code, c.postal_code),
           coalesce(n.consent_voice, c.consent_voice),
           coalesce(n.consent_sms, c.consent_sms),
           coalesce(n.consent_email, c.consent_email),
           c.attributes || n.attributes)
    RETURNING c.id
)
INSERT INTO import_changed (contact_id) SELECT id FROM changed
"""

_INSERT_NEW = """
WITH new AS (
    INSERT INTO contacts (account_key, timezone, timezone_source, postal_code,
                          consent_voice, consent_sms, consent_email, attributes)
    SELECT s.account_key, s.timezone, s.timezone_source, s.postal_code,
           coalesce(s.consent_voice, true), coalesce(s.consent_sms, true),
           coalesce(s.consent_email, true), s.attributes
    FROM import_contacts s
    WHERE NOT EXISTS (SELECT 1 FROM import_ids i WHERE i.line = s.line)
    ORDER BY s.line
    RETURNING id, account_key
)
INSERT INTO import_ids (line, contact_id, existed)
SELECT s.line, new.id, false FROM new JOIN import_contacts s ON s.account_key = new.account_key
"""

_REMOVE_STALE_DEVICES = """
WITH removed AS (
    DELETE FROM devices d USING import_ids i
    WHERE i.existed AND d.contact_id = i.contact_id
      AND NOT EXISTS (
          SELECT 1 FROM import_devices s WHERE s.line = i.line AND s.value = d.value)
    RETURNING d.contact_id
)
INSERT INTO import_changed (contact_id) SELECT contact_id FROM removed
"""

#: Only devices that are new or moved go through ON CONFLICT: it locks every row it meets,
#: even when its WHERE then leaves the row alone, and a re-import meets them all.
_UPSERT_EXISTING_DEVICES = """
WITH up AS (
    INSERT INTO devices AS d (contact_id, position, kind, value)
    SELECT i.contact_id, s.position, s.kind, s.value
    FROM import_devices s JOIN import_ids i ON i.line = s.line
    WHERE i.existed AND NOT EXISTS (
        SELECT 1 FROM devices o
        WHERE o.contact_id = i.contact_id AND o.value = s.value
          AND o.position = s.position AND o.kind = s.kind)
    ON CONFLICT (contact_id, value) DO UPDATE
        SET position = excluded.position, kind = excluded.kind
    RETURNING d.contact_id, (d.xmax = 0) AS inserted
), noted AS (
    INSERT INTO import_changed (contact_id) SELECT contact_id FROM up
)
SELECT count(*) FILTER (WHERE inserted) AS added, count(*) FILTER (WHERE NOT inserted) AS updated
FROM up
"""

_INSERT_NEW_DEVICES = """
INSERT INTO devices (contact_id, position, kind, value)
SELECT i.contact_id, s.position, s.kind, s.value
FROM import_devices s JOIN import_ids i ON i.line = s.line
WHERE NOT i.existed
"""

_ADD_MEMBERS = """
INSERT INTO list_members (list_id, contact_id)
SELECT $1, i.contact_id FROM import_ids i
WHERE NOT EXISTS (
    SELECT 1 FROM list_members m WHERE m.list_id = $1 AND m.contact_id = i.contact_id)
"""

_DRY_RUN_COUNTS = """
SELECT count(*) AS staged, count(c.id) AS existing,
       count(*) FILTER (WHERE m.contact_id IS NULL) AS new_members
FROM import_contacts s
LEFT JOIN contacts c ON c.account_key = s.account_key
LEFT JOIN list_members m ON m.contact_id = c.id AND m.list_id = $1
"""


@dataclass
class WriteCounts:
    imported: int = 0
    updated: int = 0
    changed: int = 0
    added_to_list: int = 0
    devices_added: int = 0
    devices_updated: int = 0
    devices_removed: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def _rowcount(status: str) -> int:
    """The row count at the end of a command tag such as `INSERT 0 42`."""
    return int(status.rsplit(" ", 1)[-1])


async def begin(connection: asyncpg.Connection) -> None:
    """Serialise imports and create this transaction's staging tables."""
    await connection.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
    await connection.execute(_CREATE_STAGING)


async def list_id(connection: asyncpg.Connection, name: str, *, create: bool) -> int | None:
    if create:
        await connection.execute(
            "INSERT INTO lists (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name
        )
    return await connection.fetchval("SELECT id FROM lists WHERE name = $1", name)


async def stage(connection: asyncpg.Connection, contacts: bytes, devices: bytes) -> None:
    """COPY one chunk's rows (already in COPY text format) into the staging tables."""
    if contacts:
        await connection.copy_to_table(
            "import_contacts", source=memoryview(contacts), columns=CONTACT_COLUMNS, format="text"
        )
    if devices:
        await connection.copy_to_table(
            "import_devices", source=memoryview(devices), columns=DEVICE_COLUMNS, format="text"
        )


async def drop_lines(connection: asyncpg.Connection, lines: list[int]) -> None:
    """Take rows found bad after staging (duplicate account keys) back out."""
    if lines:
        await connection.execute("DELETE FROM import_contacts WHERE line = ANY($1::int[])", lines)
        await connection.execute("DELETE FROM import_devices WHERE line = ANY($1::int[])", lines)


async def dry_run_counts(connection: asyncpg.Connection, list_ident: int | None) -> WriteCounts:
    """What `write` would count, without writing."""
    row = await connection.fetchrow(_DRY_RUN_COUNTS, list_ident if list_ident is not None else -1)
    assert row is not None
    return WriteCounts(
        imported=row["staged"] - row["existing"],
        updated=row["existing"],
        added_to_list=row["new_members"],
    )


async def write(connection: asyncpg.Connection, list_ident: int) -> WriteCounts:
    """Upsert the staged rows into contacts, devices and list_members."""
    counts = WriteCounts()
    await connection.execute(_ANALYZE_STAGING)
    counts.updated = _rowcount(await connection.execute(_EXISTING))
    if counts.updated:
        await connection.execute(_UPDATE_EXISTING)
    counts.imported = _rowcount(await connection.execute(_INSERT_NEW))
    await connection.execute("ANALYZE import_ids")
    if counts.updated:
        counts.devices_removed = _rowcount(await connection.execute(_REMOVE_STALE_DEVICES))
        row = await connection.fetchrow(_UPSERT_EXISTING_DEVICES)
        assert row is not None
        counts.devices_added, counts.devices_updated = row["added"], row["updated"]
        counts.changed = await connection.fetchval(
            "SELECT count(DISTINCT contact_id) FROM import_changed"
        )
    if counts.imported:
        counts.devices_added += _rowcount(await connection.execute(_INSERT_NEW_DEVICES))
    counts.added_to_list = _rowcount(await connection.execute(_ADD_MEMBERS, list_ident))
    return counts


async def zone_sources(connection: asyncpg.Connection) -> dict[str, int]:
    rows = await connection.fetch(
        "SELECT timezone_source, count(*) AS n FROM import_contacts GROUP BY 1"
    )
    return {row["timezone_source"]: row["n"] for row in rows}


async def clear(connection: asyncpg.Connection) -> None:
    """Empty the staging tables for the next batch."""
    await connection.execute("TRUNCATE import_contacts, import_devices, import_ids, import_changed")
