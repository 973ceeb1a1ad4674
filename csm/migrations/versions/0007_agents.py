"""agents: groups of (simulated or real) agents and the calls they took

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("wrap_seconds", sa.Float(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("agent_groups.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("talk_until", sa.DateTime(timezone=True)),
        sa.Column("busy_until", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("group_id", "seat", name="uq_agents_seat"),
    )
    op.create_table(
        "agent_calls",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pass_number", sa.SmallInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("talk_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_calls_pass", "agent_calls", ["sub_campaign_id", "day", "pass_number"])
    op.create_index(
        "ix_attempts_live_answers",
        "attempts",
        ["campaign_id", "attempted_at"],
        postgresql_where=sa.text("result IN ('abandoned', 'agent_connected')"),
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_live_answers", "attempts")
    op.drop_table("agent_calls")
    op.drop_table("agents")
    op.drop_table("agent_groups")
