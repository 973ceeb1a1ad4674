"""One account's contact history across campaigns, for `csm contacts history`.

Every attempt and skip the ledger holds for the account, the caps of the
policies it was worked under with what the account has used of each right
now, the conversation pause, final outcomes and the suppressions that match
it. This is an operator's tool: it shows the account's devices (contact data);
nothing here ever goes into a Temporal payload.

Cap usage is counted the way the pass counts it at attempt time
(csm.compliance.caps.blocking_rule): real tries only (no skips, no
`not_attempted`), on the cap's channels, in the cap's period ending now; per
device value for `per = "device"` caps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.compliance.caps import PastAttempt
from csm.compliance.policy import Cap, ContactPolicy
from csm.compliance.store import load_policy
from csm.database import driver_connection
from csm.errors import CsmError
from csm.ledger import try_shown
from csm.suppressions.store import SuppressionRow
from csm.vocabulary import CHANNEL_DEVICE_KINDS, NOT_ATTEMPTED_CODES, UNKNOWN


class UnknownAccountError(CsmError):
    """No contact has that account key."""


@dataclass(frozen=True)
class Device:
    position: int
    kind: str
    value: str


@dataclass(frozen=True)
class HistoryAttempt:
    """One ledger row of the account: an attempt, or a skip (device None, with a reason)."""

    attempted_at: datetime
    campaign_id: int
    campaign: str | None  # None: the campaign was deleted
    sub_campaign_id: int
    sub_campaign: str | None  # None: no such sub-campaign (row written by a script or test)
    day: date
    pass_number: int
    try_number: int
    channel: str
    device_id: int  # 0: a contact-level skip, no device touched
    device_kind: str | None
    device_value: str | None  # None also for a device removed since
    result: str
    skip_reason: str | None

    @property
    def counts(self) -> bool:
        """A real try of a device, or one a crash left `unknown` (it may have gone out):
        what caps and the conversation pause count."""
        if self.result == UNKNOWN:
            return True
        return self.device_id != 0 and self.result not in NOT_ATTEMPTED_CODES

    def as_json(self) -> dict[str, Any]:
        return {
            "attempted_at": self.attempted_at.isoformat(),
            "campaign": self.campaign,
            "sub_campaign": self.sub_campaign,
            "sub_campaign_id": self.sub_campaign_id,
            "day": self.day.isoformat(),
            "pass_number": self.pass_number,
            "try": try_shown(self.try_number),
            "channel": self.channel,
            "device_kind": self.device_kind,
            "device_value": self.device_value,
            "result": self.result,
            "skip_reason": self.skip_reason,
        }


@dataclass(frozen=True)
class CapUsage:
    """What the account has used of one cap now (per device value for a per-device cap)."""

    cap: Cap
    used: int
    device: str | None = None  # the device value of a per-device cap
    holds_contact: bool = True  # False: the cap names states and the account is in none

    @property
    def at_cap(self) -> bool:
        """The next attempt on the cap's channels would be refused (`capped:<name>`)."""
        return self.holds_contact and self.used >= self.cap.max

    def words(self) -> str:
        """ "5 of 7 in 7d (voice, dialer)"."""
        period = "today" if self.cap.period == "day" else f"in {self.cap.period}"
        channels = ", ".join(channel.value for channel in self.cap.channels)
        on = f" on {self.device}" if self.device else ""
        return f"{self.used} of {self.cap.max} {period}{on} ({channels})"

    def as_json(self) -> dict[str, Any]:
        return {
            "cap": self.cap.name,
            "max": self.cap.max,
            "period": self.cap.period,
            "channels": [channel.value for channel in self.cap.channels],
            "per": self.cap.per,
            "states": self.cap.states,
            "device": self.device,
            "used": self.used,
            "holds_contact": self.holds_contact,
            "at_cap": self.at_cap,
            "usage": self.words(),
        }


@dataclass(frozen=True)
class PauseStatus:
    """The conversation pause of a policy, and whether it holds the account now."""

    days: int
    results: list[str]
    channels: list[str]
    last_conversation: datetime | None  # the latest attempt ending in one of `results`
    now: datetime

    @property
    def until(self) -> datetime | None:
        if self.last_conversation is None:
            return None
        return self.last_conversation + timedelta(days=self.days)

    @property
    def holds(self) -> bool:
        """A voice (pause channel) attempt now would be skipped `recent_conversation`."""
        until = self.until
        return until is not None and self.now < until

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "results": self.results,
            "channels": self.channels,
            "last_conversation": _iso(self.last_conversation),
            "holds": self.holds,
            "until": _iso(self.until) if self.holds else None,
        }


@dataclass(frozen=True)
class PolicyUsage:
    """The policy in force for one campaign of the history (None: the global policy)."""

    campaign: str | None
    caps: list[CapUsage]
    pause: PauseStatus | None

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "caps": [usage.as_json() for usage in self.caps],
            "conversation_pause": self.pause.as_json() if self.pause else None,
        }


@dataclass(frozen=True)
class FinalOutcomeRow:
    campaign: str | None
    group: str
    scope: str  # campaign | all_campaigns
    reached_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "group": self.group,
            "scope": self.scope,
            "reached_at": self.reached_at.isoformat(),
        }


@dataclass(frozen=True)
class ContactHistory:
    account: str
    contact_id: int
    timezone: str | None  # the contact's own zone, if known
    state: str | None  # the `state` attribute, upper-cased (per-state hours and caps)
    devices: list[Device]
    attempts: list[HistoryAttempt]  # oldest first
    policies: list[PolicyUsage]
    final_outcomes: list[FinalOutcomeRow]
    suppressions: list[SuppressionRow]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "contact_id": self.contact_id,
            "timezone": self.timezone,
            "state": self.state,
            "now": self.now.isoformat(),
            "devices": [
                {"position": d.position, "kind": d.kind, "value": d.value} for d in self.devices
            ],
            "attempts": [attempt.as_json() for attempt in self.attempts],
            "caps_applied": [usage.as_json() for usage in self.policies],
            "final_outcomes": [row.as_json() for row in self.final_outcomes],
            "suppressions": [row.as_dict() for row in self.suppressions],
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# --- counting -------------------------------------------------------------------------------


def cap_used(
    cap: Cap,
    history: Sequence[PastAttempt],
    *,
    at: datetime,
    zone: ZoneInfo,
    device: str | None = None,
) -> int:
    """Attempts of `history` that count against `cap` at `at` (blocking_rule's count)."""
    since = cap.window_start(at, zone)
    rolling = cap.rolling is not None
    used = 0
    for past in history:
        if past.channel not in cap.channels or past.at > at:
            continue
        if (past.at <= since) if rolling else (past.at < since):
            continue
        if cap.per == "device" and past.device != device:
            continue
        used += 1
    return used


def policy_usage(
    policy: ContactPolicy,
    history: Sequence[PastAttempt],
    *,
    campaign: str | None,
    devices: Sequence[Device],
    state: str | None,
    at: datetime,
    zone: ZoneInfo,
) -> PolicyUsage:
    """Each cap's usage by the account at `at`, and whether the conversation pause holds."""
    usages: list[CapUsage] = []
    for cap in policy.caps:
        holds = cap.states is None or state in cap.states
        if cap.per == "account":
            usages.append(CapUsage(cap, cap_used(cap, history, at=at, zone=zone), None, holds))
            continue
        kinds = {kind for channel in cap.channels for kind in CHANNEL_DEVICE_KINDS[channel]}
        values = [d.value for d in devices if d.kind in kinds]
        values += sorted(
            {p.device for p in history if p.device and p.channel in cap.channels} - set(values)
        )
        for value in values:
            used = cap_used(cap, history, at=at, zone=zone, device=value)
            usages.append(CapUsage(cap, used, value, holds))
    pause_status = None
    pause = policy.conversation_pause
    if pause is not None:
        conversations = [p.at for p in history if p.result in pause.results and p.at <= at]
        pause_status = PauseStatus(
            days=pause.days,
            results=list(pause.results),
            channels=[channel.value for channel in pause.channels],
            last_conversation=max(conversations, default=None),
            now=at,
        )
    return PolicyUsage(campaign, usages, pause_status)


# --- reading --------------------------------------------------------------------------------


_ATTEMPTS = """
SELECT a.attempted_at, a.campaign_id, c.name AS campaign, a.sub_campaign_id,
       sc.name AS sub_campaign, a.day, a.pass_number, a.try_number, a.channel, a.device_id,
       d.kind AS device_kind, d.value AS device_value, a.result, a.skip_reason
FROM attempts a
LEFT JOIN campaigns c ON c.id = a.campaign_id
LEFT JOIN sub_campaigns sc ON sc.id = a.sub_campaign_id
LEFT JOIN devices d ON d.id = a.device_id AND a.device_id <> 0
WHERE a.contact_id = $1
ORDER BY a.attempted_at, a.id
"""

_SUPPRESSIONS = """
SELECT s.id, s.kind, s.value, c.name AS campaign, s.reason, s.created_at
FROM suppressions s LEFT JOIN campaigns c ON c.id = s.campaign_id
WHERE (s.kind = 'account' AND s.value = $1)
   OR (s.kind IN ('phone', 'email') AND s.value = ANY($2::text[]))
ORDER BY s.created_at, s.id
"""


async def _campaign_zone(connection: asyncpg.Connection, campaign_id: int | None) -> str | None:
    if campaign_id is None:
        return None
    return await connection.fetchval("SELECT timezone FROM campaigns WHERE id = $1", campaign_id)


async def contact_history(
    engine: AsyncEngine, account: str, *, now: datetime | None = None
) -> ContactHistory:
    """Everything csm knows about contacting `account` (an account key), as of `now`."""
    now = now or datetime.now(UTC)
    async with driver_connection(engine) as connection:
        contact = await connection.fetchrow(
            "SELECT id, timezone, upper(attributes->>'state') AS state"
            " FROM contacts WHERE account_key = $1",
            account,
        )
        if contact is None:
            raise UnknownAccountError(f"unknown account {account!r}: no contact has that key")
        contact_id = contact["id"]
        devices = [
            Device(row["position"], row["kind"], row["value"])
            for row in await connection.fetch(
                "SELECT position, kind, value FROM devices WHERE contact_id = $1 ORDER BY position",
                contact_id,
            )
        ]
        attempts = [
            HistoryAttempt(**dict(row)) for row in await connection.fetch(_ATTEMPTS, contact_id)
        ]
        counted = [
            PastAttempt(a.attempted_at, a.channel, a.device_value, a.result)
            for a in attempts
            if a.counts
        ]
        campaigns: dict[int, str | None] = {}
        for attempt in attempts:
            campaigns.setdefault(attempt.campaign_id, attempt.campaign)
        scopes: list[tuple[int | None, str | None]] = [
            (campaign_id, name) for campaign_id, name in campaigns.items() if name is not None
        ] or [(None, None)]
        policies = []
        for campaign_id, name in scopes:
            policy = await load_policy(connection, campaign_id)
            zone = contact["timezone"] or await _campaign_zone(connection, campaign_id) or "UTC"
            policies.append(
                policy_usage(
                    policy,
                    counted,
                    campaign=name,
                    devices=devices,
                    state=contact["state"],
                    at=now,
                    zone=ZoneInfo(zone),
                )
            )
        finals = [
            FinalOutcomeRow(row["campaign"], row["group_name"], row["scope"], row["reached_at"])
            for row in await connection.fetch(
                "SELECT c.name AS campaign, f.group_name, f.scope, f.reached_at"
                " FROM final_outcomes f LEFT JOIN campaigns c ON c.id = f.campaign_id"
                " WHERE f.contact_id = $1 ORDER BY f.reached_at, c.name",
                contact_id,
            )
        ]
        suppressions = [
            SuppressionRow(**dict(row))
            for row in await connection.fetch(
                _SUPPRESSIONS, account, [device.value for device in devices]
            )
        ]
    return ContactHistory(
        account=account,
        contact_id=contact_id,
        timezone=contact["timezone"],
        state=contact["state"],
        devices=devices,
        attempts=attempts,
        policies=policies,
        final_outcomes=finals,
        suppressions=suppressions,
        now=now,
    )
