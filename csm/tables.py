"""Database tables (SQLModel). Migrations in `csm/migrations` create them.

Table objects never travel in Temporal payloads: activities turn them into
plain DTOs carrying ids, codes and counts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TEXT
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _created() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Contact(SQLModel, table=True):
    """An account on one or more lists: devices, time zone, consent and free attributes."""

    __tablename__ = "contacts"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    account_key: str = Field(sa_column=Column(TEXT, nullable=False, unique=True))
    timezone: str | None = Field(default=None, max_length=64)
    timezone_source: str = Field(default="file", max_length=16)  # file|phone|postal|unknown
    postal_code: str | None = Field(default=None, max_length=16)
    consent_voice: bool = True
    consent_sms: bool = True
    consent_email: bool = True
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Device(SQLModel, table=True):
    """A phone number (E.164) or e-mail address (lower-cased) of a contact, in priority order."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("contact_id", "value", name="uq_devices_contact_value"),
        Index("ix_devices_contact_position", "contact_id", "position"),
        Index("ix_devices_value", "value"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    contact_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False)
    )
    position: int = Field(sa_column=Column(SmallInteger, nullable=False))
    kind: str = Field(max_length=16)  # DeviceKind
    value: str = Field(sa_column=Column(TEXT, nullable=False))


class ContactList(SQLModel, table=True):
    """A named list of contacts; one account may sit on many lists."""

    __tablename__ = "lists"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    created_at: datetime = _created()


class ListMember(SQLModel, table=True):
    __tablename__ = "list_members"
    __table_args__ = (Index("ix_list_members_contact", "contact_id"),)

    list_id: int = Field(
        sa_column=Column(Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    )
    contact_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
        )
    )
    added_at: datetime = _created()


class Campaign(SQLModel, table=True):
    """A business purpose with a defined strategy, run through lists as sub-campaigns."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    timezone: str = Field(max_length=64, description="the campaign's operating time zone")
    priority: int = 0  # higher goes first on accounts shared under a cap (csm.compliance.gate)
    created_at: datetime = _created()


class Strategy(SQLModel, table=True):
    """One version of a campaign's defined strategy; in force from `effective_from` on."""

    __tablename__ = "strategies"
    __table_args__ = (UniqueConstraint("campaign_id", "version", name="uq_strategies_version"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    )
    version: int
    effective_from: date
    source: str = Field(sa_column=Column(TEXT, nullable=False))  # the TOML as written
    definition: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # validated
    created_at: datetime = _created()


class ResponseGroup(SQLModel, table=True):
    """A campaign's named set of result codes (per strategy version); may be final."""

    __tablename__ = "response_groups"
    __table_args__ = (
        UniqueConstraint("strategy_id", "name", name="uq_response_groups_strategy_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    )
    strategy_id: int = Field(
        sa_column=Column(Integer, ForeignKey("strategies.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=64)
    codes: list[str] = Field(sa_column=Column(ARRAY(TEXT), nullable=False))
    final: str | None = Field(default=None, max_length=16)  # None | campaign | all_campaigns


class SubCampaign(SQLModel, table=True):
    """A campaign run through one list: one durable Temporal workflow."""

    __tablename__ = "sub_campaigns"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="uq_sub_campaigns_name"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    )
    list_id: int = Field(
        sa_column=Column(Integer, ForeignKey("lists.id", ondelete="RESTRICT"), nullable=False)
    )
    name: str = Field(max_length=200)
    workflow_id: str = Field(unique=True, max_length=255)
    strategy_override: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    state: str = Field(default="running", max_length=16)  # running|paused|stopped|completed
    start_day: date | None = None  # first campaign day: the pass pattern counts from it
    created_at: datetime = _created()


class Attempt(SQLModel, table=True):
    """The attempt ledger: one row per sub-campaign × day × pass × contact × device × try.

    A contact skipped without touching a device has `device_id` 0 and a skip reason.
    Append-only, hence no foreign key on the hot path.
    """

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint(
            "sub_campaign_id",
            "day",
            "pass_number",
            "contact_id",
            "device_id",
            "try_number",
            name="uq_attempts_once",
        ),
        Index("ix_attempts_contact", "contact_id", "attempted_at"),
        Index(  # the abandon rate: live answers of a campaign, a small part of the ledger
            "ix_attempts_live_answers",
            "campaign_id",
            "attempted_at",
            postgresql_where=text("result IN ('abandoned', 'agent_connected')"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    sub_campaign_id: int = Field(sa_column=Column(Integer, nullable=False))
    campaign_id: int = Field(sa_column=Column(Integer, nullable=False))
    day: date
    pass_number: int = Field(sa_column=Column(SmallInteger, nullable=False))
    contact_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    device_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    try_number: int = Field(sa_column=Column(SmallInteger, nullable=False))
    channel: str = Field(max_length=16)
    result: str = Field(max_length=32)
    skip_reason: str | None = Field(default=None, max_length=32)
    attempted_at: datetime = _created()


class PassSelection(SQLModel, table=True):
    """The contacts a pass selected when it started, frozen so a retry works the same set.

    `seq` orders the work (by window opening, then contact); the cursor counts it.
    Round 0 is the pass's own selection; round N > 0 (try N) the contacts whose
    devices gave a retryable result in round N - 1, retried after the pass's gap.
    """

    __tablename__ = "pass_selections"
    __table_args__ = (Index("ix_pass_selections_contact", "contact_id"),)  # list priority

    sub_campaign_id: int = Field(sa_column=Column(Integer, primary_key=True))
    day: date = Field(primary_key=True)
    pass_number: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    round: int = Field(default=0, sa_column=Column(SmallInteger, primary_key=True))
    seq: int = Field(sa_column=Column(Integer, primary_key=True))
    contact_id: int = Field(sa_column=Column(BigInteger, nullable=False))


class PassProgress(SQLModel, table=True):
    """Where a pass is: its cursor in the frozen selection and the batch in flight, if any.

    Written in the same transaction as each batch's attempt rows, so a crash can
    neither repeat nor lose an attempt: a batch in flight at the crash is recorded
    as `unknown`, never resent.
    """

    __tablename__ = "pass_progress"

    sub_campaign_id: int = Field(sa_column=Column(Integer, primary_key=True))
    day: date = Field(primary_key=True)
    pass_number: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    round: int = Field(default=0, sa_column=Column(SmallInteger, primary_key=True))  # = try
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    selected: int = 0
    cursor: int = 0  # seq of the last contact whose attempts are recorded
    inflight_to: int | None = None  # seq up to which a batch was being attempted
    finished: bool = False
    updated_at: datetime = _created()


class PassShard(SQLModel, table=True):
    """One part of a sharded pass's first sweep (`pacing.shards`): round 0's seqs
    (lo, selected], worked by its own activity with its own cursor and batch in flight.

    Shaped like a pass_progress row so the ledger records a shard's batches and settles
    its batch in flight with the same statements; a crash of one shard resumes at its
    own cursor and settles only its own batch. Once every shard is through, round 0's
    pass_progress cursor moves to its end.
    """

    __tablename__ = "pass_shards"

    sub_campaign_id: int = Field(sa_column=Column(Integer, primary_key=True))
    day: date = Field(primary_key=True)
    pass_number: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    shard: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    lo: int  # the seq just before the shard's first
    selected: int  # the shard's last seq
    cursor: int  # seq of the shard's last contact whose attempts are recorded
    inflight_to: int | None = None
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    finished: bool = False
    updated_at: datetime = _created()


class Suppression(SQLModel, table=True):
    """Do not contact: an account (by account key, so it holds for accounts imported later),
    a phone number or an e-mail address, in one campaign or (campaign NULL) in all.

    Checked when each batch of a pass is loaded, just before its attempts.
    """

    __tablename__ = "suppressions"
    __table_args__ = (
        Index(
            "uq_suppressions_target", "value", "kind", text("coalesce(campaign_id, 0)"), unique=True
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    campaign_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True),
    )
    kind: str = Field(max_length=16)  # account | phone | email
    value: str = Field(sa_column=Column(TEXT, nullable=False))  # account key, E.164, address
    reason: str = Field(default="do_not_contact", max_length=32)
    created_at: datetime = _created()


class Policy(SQLModel, table=True):
    """One version of the contact policy: global (campaign NULL) or a campaign's override."""

    __tablename__ = "policies"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True),
    )
    version: int
    source: str = Field(sa_column=Column(TEXT, nullable=False))  # the TOML as written
    definition: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))  # its sections
    author: str = Field(default="", max_length=200)
    created_at: datetime = _created()


class ContactLease(SQLModel, table=True):
    """An account being worked by one pass round right now (see csm.compliance.gate)."""

    __tablename__ = "contact_leases"

    contact_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    holder: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class FinalOutcome(SQLModel, table=True):
    """An account that reached a final response group: no more contact in that campaign
    (scope `campaign`) or in any (scope `all_campaigns`)."""

    __tablename__ = "final_outcomes"

    contact_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    campaign_id: int = Field(sa_column=Column(Integer, primary_key=True))
    group_name: str = Field(primary_key=True, max_length=64)
    scope: str = Field(max_length=16)
    reached_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AgentGroup(SQLModel, table=True):
    """Agents who take the calls of dialer passes and live transfers; talk and wrap-up times
    are the means the simulated contact centre draws from."""

    __tablename__ = "agent_groups"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)
    talk_seconds: float
    wrap_seconds: float
    created_at: datetime = _created()


class Agent(SQLModel, table=True):
    """One seat of a group: available, on a call until `talk_until`, in wrap-up until
    `busy_until` (states follow from the clock, so no process has to move them)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("group_id", "seat", name="uq_agents_seat"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(
        sa_column=Column(Integer, ForeignKey("agent_groups.id", ondelete="CASCADE"), nullable=False)
    )
    seat: int
    talk_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    busy_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class AgentCall(SQLModel, table=True):
    """A contact connected to an agent by a pass: for utilisation and the agent's history."""

    __tablename__ = "agent_calls"
    __table_args__ = (Index("ix_agent_calls_pass", "sub_campaign_id", "day", "pass_number"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    agent_id: int
    group_id: int
    sub_campaign_id: int
    day: date
    pass_number: int = Field(sa_column=Column(SmallInteger, nullable=False))
    contact_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    talk_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    busy_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ManagerAction(SQLModel, table=True):
    """An action a manager took on a sub-campaign from the web page, and how it ended."""

    __tablename__ = "manager_actions"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    sub_campaign_id: int = Field(index=True)
    actor: str = Field(max_length=100)
    action: str = Field(max_length=32)  # pause | resume | stop | amend
    detail: str = Field(default="", sa_column=Column(TEXT, nullable=False, server_default=""))
    outcome: str = Field(sa_column=Column(TEXT, nullable=False))  # done, or why it was refused
    at: datetime = _created()
