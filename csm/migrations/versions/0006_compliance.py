"""compliance: contact policies, campaign priority, account leases, final outcomes,
suppressions by kind and value

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE")),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.TEXT(), nullable=False),
        sa.Column("definition", JSONB(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False, server_default=""),
        _created(),
    )
    op.create_index(
        "uq_policies_scope_version",
        "policies",
        [sa.text("coalesce(campaign_id, 0)"), "version"],
        unique=True,
    )
    op.add_column(
        "campaigns", sa.Column("priority", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_table(
        "contact_leases",
        sa.Column("contact_id", sa.BigInteger(), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "final_outcomes",
        sa.Column("contact_id", sa.BigInteger(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), primary_key=True),
        sa.Column("group_name", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("suppressions", sa.Column("kind", sa.String(16)))
    op.add_column("suppressions", sa.Column("value", sa.TEXT()))
    op.execute(
        """
        UPDATE suppressions s SET kind = 'account', value = c.account_key
        FROM contacts c WHERE c.id = s.contact_id
        """
    )
    op.execute(
        """
        UPDATE suppressions SET
          kind = CASE WHEN device_value LIKE '+%' THEN 'phone' ELSE 'email' END,
          value = device_value
        WHERE kind IS NULL
        """
    )
    op.drop_constraint("ck_suppressions_target", "suppressions")
    op.drop_index("ix_suppressions_contact", "suppressions")
    op.drop_index("ix_suppressions_device", "suppressions")
    op.drop_column("suppressions", "contact_id")
    op.drop_column("suppressions", "device_value")
    op.alter_column("suppressions", "kind", nullable=False)
    op.alter_column("suppressions", "value", nullable=False)
    op.create_check_constraint(
        "ck_suppressions_kind", "suppressions", "kind IN ('account', 'phone', 'email')"
    )
    op.create_index(
        "uq_suppressions_target",
        "suppressions",
        ["value", "kind", sa.text("coalesce(campaign_id, 0)")],
        unique=True,
    )
    op.create_index("ix_devices_value", "devices", ["value"])
    op.create_index("ix_pass_selections_contact", "pass_selections", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_pass_selections_contact", "pass_selections")
    op.drop_index("ix_devices_value", "devices")
    op.drop_index("uq_suppressions_target", "suppressions")
    op.drop_constraint("ck_suppressions_kind", "suppressions")
    op.add_column("suppressions", sa.Column("contact_id", sa.BigInteger()))
    op.add_column("suppressions", sa.Column("device_value", sa.TEXT()))
    op.execute(
        """
        UPDATE suppressions s SET contact_id = c.id FROM contacts c
        WHERE s.kind = 'account' AND c.account_key = s.value
        """
    )
    op.execute("UPDATE suppressions SET device_value = value WHERE kind <> 'account'")
    op.execute("DELETE FROM suppressions WHERE contact_id IS NULL AND device_value IS NULL")
    op.drop_column("suppressions", "kind")
    op.drop_column("suppressions", "value")
    op.create_index("ix_suppressions_contact", "suppressions", ["contact_id"])
    op.create_index("ix_suppressions_device", "suppressions", ["device_value"])
    op.create_check_constraint(
        "ck_suppressions_target",
        "suppressions",
        "contact_id IS NOT NULL OR device_value IS NOT NULL",
    )
    op.drop_table("final_outcomes")
    op.drop_table("contact_leases")
    op.drop_column("campaigns", "priority")
    op.drop_table("policies")
