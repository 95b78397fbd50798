"""Rollups: key before bucket in the primary key, and rows summed over all keys.

Measured at 10 million events (bench/PROPOSALS.md, P1): with the primary key
(organization, dimension, grain, bucket, key, value) an organization-wide read scanned every
key's rows in its range, so the 30-day endpoint table grew with traffic (3.4 ms of SQL at
100k, up to 19.7 ms at 10M). This revision

* orders the primary key (organization, dimension, grain, key, bucket, value), so a read of
  one key, a page of keys or the all-keys rows is one contiguous range per piece;
* stores the table WITHOUT ROWID on SQLite (the key is the table) and carries calls and
  credits in the key's index on PostgreSQL (index-only scans), with autovacuum tuned so
  the visibility map and statistics keep up with steady appends;
* adds, at the hour and day grains, rows with api_key_id = -1 (``ALL_KEYS``) summed over
  every key, computed here from the existing rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "organization_id, dimension, grain, bucket, api_key_id, value, calls, credits"
NEW_KEY = "organization_id, dimension, grain, api_key_id, bucket, value"
OLD_KEY = "organization_id, dimension, grain, bucket, api_key_id, value"
ALL_KEYS_ROWS = (
    f"INSERT INTO usage_rollups ({COLUMNS}) "
    "SELECT organization_id, dimension, grain, bucket, -1, value, sum(calls), sum(credits) "
    "FROM usage_rollups WHERE grain IN (3600, 86400) AND api_key_id <> -1 "
    "GROUP BY organization_id, dimension, grain, bucket, value"
)


def _sqlite_rebuild(key: str, without_rowid: bool) -> None:
    suffix = " WITHOUT ROWID" if without_rowid else ""
    op.execute(
        "CREATE TABLE usage_rollups_new (organization_id INTEGER NOT NULL, "
        "dimension SMALLINT NOT NULL, grain INTEGER NOT NULL, bucket BIGINT NOT NULL, "
        "api_key_id INTEGER NOT NULL, value TEXT NOT NULL, calls BIGINT NOT NULL, "
        f"credits BIGINT NOT NULL, CONSTRAINT pk_usage_rollups PRIMARY KEY ({key})){suffix}"
    )
    op.execute(
        f"INSERT INTO usage_rollups_new ({COLUMNS}) SELECT {COLUMNS} FROM usage_rollups "
        f"ORDER BY {key}"
    )
    op.execute("DROP TABLE usage_rollups")
    op.execute("ALTER TABLE usage_rollups_new RENAME TO usage_rollups")


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _sqlite_rebuild(NEW_KEY, without_rowid=True)
    else:
        op.execute("ALTER TABLE usage_rollups DROP CONSTRAINT pk_usage_rollups")
        op.execute(
            f"ALTER TABLE usage_rollups ADD CONSTRAINT pk_usage_rollups "
            f"PRIMARY KEY ({NEW_KEY}) INCLUDE (calls, credits)"
        )
        op.execute(
            "ALTER TABLE usage_rollups SET (autovacuum_analyze_scale_factor = 0.01, "
            "autovacuum_vacuum_scale_factor = 0.02)"
        )
    op.execute(ALL_KEYS_ROWS)


def downgrade() -> None:
    op.execute("DELETE FROM usage_rollups WHERE api_key_id = -1")
    if op.get_context().dialect.name == "sqlite":
        _sqlite_rebuild(OLD_KEY, without_rowid=False)
    else:
        op.execute(
            "ALTER TABLE usage_rollups RESET (autovacuum_analyze_scale_factor, "
            "autovacuum_vacuum_scale_factor)"
        )
        op.execute("ALTER TABLE usage_rollups DROP CONSTRAINT pk_usage_rollups")
        op.execute(
            f"ALTER TABLE usage_rollups ADD CONSTRAINT pk_usage_rollups PRIMARY KEY ({OLD_KEY})"
        )
