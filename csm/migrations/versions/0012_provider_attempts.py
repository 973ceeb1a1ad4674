"""provider attempts: calls and messages placed with a real carrier, and what it said back

Real carriers answer asynchronously (csm.providers.twilio). Each attempt placed
with one gets a row here *before* it is sent, keyed by its attempt key: the
guard that no key is ever placed twice, whatever crashes. The webhook receiver
(csm.webhooks) moves the row forward as signed callbacks arrive (a status only
ever moves up its rank, so a repeated or late callback changes nothing); the
worker settles it. `provider_events` keeps each accepted callback (ids and codes
only), `provider_orphans` the callbacks that matched no attempt, and
`inbound_messages` the texts received (an opt-out suppresses the number).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_attempts",
        sa.Column("attempt_key", sa.Text(), primary_key=True),
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),  # voice | dialer | sms
        sa.Column("provider", sa.Text(), nullable=False),  # twilio
        sa.Column("sid", sa.Text(), unique=True),  # the carrier's id, once known
        # placing: row written, POST not answered yet; placed: the carrier took it;
        # settled: the worker recorded its result (`result`)
        sa.Column("state", sa.Text(), nullable=False, server_default="placing"),
        sa.Column("status", sa.Text()),  # the carrier's last status (CallStatus, MessageStatus)
        sa.Column("status_rank", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("answered_by", sa.Text()),  # AnsweredBy (voice)
        sa.Column("error_code", sa.Text()),  # ErrorCode / the REST error's code
        sa.Column("result", sa.Text()),  # csm's result code, once settled
        # a live answer waits for csm's agent decision (a pass with agents)
        sa.Column("bridge", sa.Boolean(), nullable=False, server_default=sa.false()),
        # set by the worker on a bridged live answer: the agent address to <Dial>,
        # '' when no agent was free (the call is not connected)
        sa.Column("connect_to", sa.Text()),
        sa.Column("message", sa.Text()),  # the voice message the answer URL speaks
        sa.Column(
            "placed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_provider_attempts_in_flight",
        "provider_attempts",
        ["sub_campaign_id"],
        postgresql_where=sa.text("state <> 'settled'"),
    )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("attempt_key", sa.Text()),
        sa.Column("sid", sa.Text()),
        sa.Column("kind", sa.Text(), nullable=False),  # voice_status | voice_answer | sms_status
        sa.Column("status", sa.Text()),
        sa.Column("answered_by", sa.Text()),
        sa.Column("error_code", sa.Text()),
        sa.Column("changed", sa.Boolean(), nullable=False),  # moved its attempt forward
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_provider_events_key", "provider_events", ["attempt_key"])
    op.create_table(
        "provider_orphans",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("attempt_key", sa.Text()),  # as the URL gave it, if it did
        sa.Column("sid", sa.Text()),
        sa.Column("status", sa.Text()),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("reconciled_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("sid", sa.Text(), nullable=False, unique=True),  # MessageSid: a repeat is no-op
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.execute("ALTER TABLE agent_groups ADD COLUMN address text")


def downgrade() -> None:
    op.execute("ALTER TABLE agent_groups DROP COLUMN address")
    op.drop_table("inbound_messages")
    op.drop_table("provider_orphans")
    op.drop_index("ix_provider_events_key", table_name="provider_events")
    op.drop_table("provider_events")
    op.drop_index("ix_provider_attempts_in_flight", table_name="provider_attempts")
    op.drop_table("provider_attempts")
