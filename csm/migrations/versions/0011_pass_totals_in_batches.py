"""pass totals counted by the writers: drop the ledger's statement trigger

The trigger of 0008 grouped every statement's new rows in SQL, which cost about
a third of a pass. The pass now counts a batch's totals from the rows it holds
in memory and upserts them in the batch's transaction; the SQL paths that write
ledger rows (settle, skip the rest) add theirs in the same statement
(csm.ledger). The totals tables stay as they are: exact up to this revision.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TRIGGER attempts_counted ON attempts")
    op.execute("DROP FUNCTION csm_count_attempts()")


def downgrade() -> None:
    """Put 0008's trigger back (its SQL, not a copy of it: one definition)."""
    spec = importlib.util.spec_from_file_location(
        "csm_migration_0008", Path(__file__).with_name("0008_pass_totals.py")
    )
    assert spec is not None and spec.loader is not None
    trigger = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trigger)
    op.execute(
        f"""
        CREATE FUNCTION csm_count_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          {trigger.TOTALS.format(source="new_rows")};
          {trigger.REACH.format(source="new_rows")};
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER attempts_counted AFTER INSERT ON attempts"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION csm_count_attempts()"
    )
