"""manager actions: who paused, resumed, stopped or amended a sub-campaign from the web

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manager_actions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("sub_campaign_id", sa.Integer(), nullable=False, index=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.TEXT(), nullable=False, server_default=""),
        sa.Column("outcome", sa.TEXT(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("manager_actions")
