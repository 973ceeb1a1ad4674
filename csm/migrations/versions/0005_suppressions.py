"""suppressions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE")),
        sa.Column("contact_id", sa.BigInteger(), sa.ForeignKey("contacts.id", ondelete="CASCADE")),
        sa.Column("device_value", sa.TEXT()),
        sa.Column("reason", sa.String(32), nullable=False, server_default="do_not_contact"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "contact_id IS NOT NULL OR device_value IS NOT NULL", name="ck_suppressions_target"
        ),
    )
    op.create_index("ix_suppressions_contact", "suppressions", ["contact_id"])
    op.create_index("ix_suppressions_device", "suppressions", ["device_value"])


def downgrade() -> None:
    op.drop_table("suppressions")
