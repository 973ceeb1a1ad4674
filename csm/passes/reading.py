"""Reading a batch of a round's frozen selection: contacts with their devices, in order."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import asyncpg

from csm.ledger import PassKey
from csm.passes.contact import Contact, Device, new_record
from csm.passes.context import PassRun
from csm.passes.decision import RETRYABLE
from csm.vocabulary import Channel

if TYPE_CHECKING:
    from csm.pooled import Connection

CONSENT_COLUMN = {
    Channel.VOICE: "consent_voice",
    Channel.DIALER: "consent_voice",
    Channel.SMS: "consent_sms",
    Channel.EMAIL: "consent_email",
}

#: The contacts of seqs ($4, $5] of a round, each row one device of the pass's kinds (a
#: retry round: the devices that gave a retryable result), with suppressions looked up.
#: `_contacts` unpacks a row's columns in this order.
_BATCH = """
SELECT s.seq, c.id, c.timezone, c.{consent} AS consented,
       {attributes} AS attributes,
       upper(c.attributes->>'state') AS state,
       d.id AS device_id, d.kind, d.value,
       EXISTS (SELECT 1 FROM suppressions su
               WHERE su.value = c.account_key AND su.kind = 'account'
               AND (su.campaign_id IS NULL OR su.campaign_id = $9)) AS suppressed,
       EXISTS (SELECT 1 FROM suppressions su
               WHERE su.value = d.value AND su.kind <> 'account'
               AND (su.campaign_id IS NULL OR su.campaign_id = $9))
         AS device_suppressed
FROM pass_selections s
JOIN contacts c ON c.id = s.contact_id
LEFT JOIN devices d ON d.contact_id = c.id AND d.kind = ANY($6::text[])
  AND ($7 = 0 OR d.id IN (
    SELECT a.device_id FROM attempts a
    WHERE a.sub_campaign_id = $1 AND a.day = $2 AND a.pass_number = $3
      AND a.contact_id = c.id AND a.try_number = $7 - 1
      AND a.result = ANY($8::text[])))
WHERE s.sub_campaign_id = $1 AND s.day = $2 AND s.pass_number = $3
  AND s.round = $7 AND s.seq > $4 AND s.seq <= $5
ORDER BY s.seq, array_position($6::text[], d.kind), d.position
"""


async def load(
    run: PassRun,
    connection: Connection,
    key: PassKey,
    cursor: int,
    size: int,
    *,
    resuming: bool,
) -> list[Contact]:
    """The next batch past `cursor`, each contact with its devices in the pass's order.

    `resuming`: the first batch after a restart, whose contacts a pause may have recorded
    already (lanes finish out of order): those are left out.
    """
    definition = run.params.definition
    with_attributes = bool(definition.template or definition.subject)
    query = _BATCH.format(  # the only interpolations are fixed column names
        consent=CONSENT_COLUMN[definition.channel],
        attributes="c.attributes::text" if with_attributes else "NULL",
    )
    records = await connection.fetch(
        query,
        *key.args,
        cursor,
        cursor + size,
        [kind.value for kind in definition.devices],
        key.round,
        sorted(RETRYABLE),
        run.params.campaign_id,
    )
    batch = _contacts(run, records)
    if resuming and batch:
        batch = await _not_recorded(connection, key, batch)
    return batch


def _contacts(run: PassRun, records: list[asyncpg.Record]) -> list[Contact]:
    """One Contact per seq from the rows of its devices.

    Once per device of a pass, so each row is unpacked once, in `_BATCH`'s column order,
    rather than looked up column by column by name.
    """
    zones, default_zone = run.tools.zones, run.params.campaign_timezone
    batch: list[Contact] = []
    contact: Contact | None = None
    for r in records:
        (
            seq,
            contact_id,
            timezone,
            consented,
            attributes,
            state,
            device_id,
            kind,
            value,
            suppressed,
            device_suppressed,
        ) = r
        if contact is None or contact.seq != seq:
            contact = Contact(
                seq=seq,
                contact_id=contact_id,
                zone=zones[timezone or default_zone],
                consented=consented,
                devices=[],
                attributes=json.loads(attributes) if attributes else {},
                state=state,
            )
            batch.append(contact)
        if suppressed:
            contact.suppressed = True
        if device_id is None:
            continue
        if device_suppressed:
            contact.suppressed_devices += 1
        else:
            contact.devices.append(new_record(Device, (device_id, kind, value)))
    return batch


async def _not_recorded(
    connection: Connection, key: PassKey, batch: list[Contact]
) -> list[Contact]:
    """The batch without the contacts that already have a row in this round."""
    done = set(
        await connection.fetchval(
            "SELECT coalesce(array_agg(contact_id), '{}') FROM attempts"
            " WHERE sub_campaign_id = $1 AND day = $2 AND pass_number = $3"
            " AND contact_id = ANY($4::bigint[]) AND try_number = $5",
            *key.args,
            [c.contact_id for c in batch],
            key.round,  # this round's rows: every contact of a retry round has others
        )
    )
    return [c for c in batch if c.contact_id not in done]
