"""pass retry rounds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, key in (
        ("pass_selections", ["sub_campaign_id", "day", "pass_number", "round", "seq"]),
        ("pass_progress", ["sub_campaign_id", "day", "pass_number", "round"]),
    ):
        op.add_column(
            table, sa.Column("round", sa.SmallInteger(), nullable=False, server_default="0")
        )
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, key)
    op.add_column("pass_progress", sa.Column("started_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("pass_progress", "started_at")
    for table, key in (
        ("pass_selections", ["sub_campaign_id", "day", "pass_number", "seq"]),
        ("pass_progress", ["sub_campaign_id", "day", "pass_number"]),
    ):
        op.execute(sa.text(f"DELETE FROM {table} WHERE round > 0"))
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, key)
        op.drop_column(table, "round")
