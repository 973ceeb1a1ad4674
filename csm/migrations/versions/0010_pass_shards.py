"""pass shards: a pass's first sweep split into parts that run at once

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Shaped like a round's pass_progress row, so the ledger moves a shard's cursor and
    # settles its batch in flight with the same statements: the shard's contacts are the
    # seqs (lo, selected] of round 0, and its cursor starts at lo.
    op.create_table(
        "pass_shards",
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pass_number", sa.SmallInteger(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("lo", sa.Integer(), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("inflight_to", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sub_campaign_id", "day", "pass_number", "shard"),
        sa.CheckConstraint("lo <= cursor AND cursor <= selected", name="pass_shards_cursor_inside"),
    )


def downgrade() -> None:
    op.drop_table("pass_shards")
