"""pass selections and progress

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pass_progress",
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pass_number", sa.SmallInteger(), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("inflight_to", sa.Integer(), nullable=True),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sub_campaign_id", "day", "pass_number"),
    )
    op.create_table(
        "pass_selections",
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("pass_number", sa.SmallInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sub_campaign_id", "day", "pass_number", "seq"),
    )
    op.add_column("sub_campaigns", sa.Column("start_day", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("sub_campaigns", "start_day")
    op.drop_table("pass_selections")
    op.drop_table("pass_progress")
