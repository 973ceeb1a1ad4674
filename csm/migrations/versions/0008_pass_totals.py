"""pass totals: per-pass counts kept by a statement trigger on the attempt ledger

Live results read these small rows instead of grouping a pass's ledger rows on
every refresh (a 1,000,000-contact pass would cost a scan per look).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

KEY = "sub_campaign_id, day, pass_number"

# `contacts` equals `rows`: the ledger's unique key allows one skip row per contact and
# round, and count_pass reads `contacts` only for skips (no DISTINCT: it costs a sort).

TOTALS = f"""
INSERT INTO pass_totals AS t ({KEY}, result, skip_reason, rows, contacts)
SELECT {KEY}, result, coalesce(skip_reason, ''), count(*), count(*)
FROM {{source}} GROUP BY {KEY}, result, coalesce(skip_reason, '')
ON CONFLICT ({KEY}, result, skip_reason) DO UPDATE
  SET rows = t.rows + EXCLUDED.rows, contacts = t.contacts + EXCLUDED.contacts
"""
# A contact's round-0 rows are written by one statement (its batch), and only round 0
# brings new contacts (retry rounds retry contacts already tried).
REACH = f"""
INSERT INTO pass_reach AS r ({KEY}, attempted, skipped)
SELECT {KEY}, count(*) FILTER (WHERE tried), count(*) FILTER (WHERE NOT tried)
FROM (SELECT {KEY}, contact_id,
             bool_or(result NOT IN ('skipped', 'not_attempted')) AS tried
      FROM {{source}} WHERE try_number = 0 GROUP BY {KEY}, contact_id) per_contact
GROUP BY {KEY}
ON CONFLICT ({KEY}) DO UPDATE
  SET attempted = r.attempted + EXCLUDED.attempted, skipped = r.skipped + EXCLUDED.skipped
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE pass_totals (
          sub_campaign_id integer NOT NULL, day date NOT NULL, pass_number smallint NOT NULL,
          result varchar(32) NOT NULL, skip_reason varchar(32) NOT NULL,
          rows bigint NOT NULL, contacts bigint NOT NULL,
          PRIMARY KEY ({KEY}, result, skip_reason))
        """
    )
    op.execute(
        f"""
        CREATE TABLE pass_reach (
          sub_campaign_id integer NOT NULL, day date NOT NULL, pass_number smallint NOT NULL,
          attempted bigint NOT NULL, skipped bigint NOT NULL,
          PRIMARY KEY ({KEY}))
        """
    )
    op.execute(TOTALS.format(source="attempts"))
    op.execute(REACH.format(source="attempts"))
    op.execute(
        f"""
        CREATE FUNCTION csm_count_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          {TOTALS.format(source="new_rows")};
          {REACH.format(source="new_rows")};
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER attempts_counted AFTER INSERT ON attempts"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
        " EXECUTE FUNCTION csm_count_attempts()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER attempts_counted ON attempts")
    op.execute("DROP FUNCTION csm_count_attempts()")
    op.execute("DROP TABLE pass_reach")
    op.execute("DROP TABLE pass_totals")
