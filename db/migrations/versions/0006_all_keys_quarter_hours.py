"""All-keys rollup rows at the quarter-hour grain too (docs/rollups.md, "Layout").

An organization-wide read of a range edge at :15, :30 or :45 read the per-key quarter-hour
rows with no key to search by, i.e. every quarter-hour row the organization ever had. The
new rows are the sums of the per-key quarter-hour rows; pending events are folded into
them by the folder as they come. Codes are literal: migrations are frozen history.

Revision ID: 0006
Revises: 0005b
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_KEYS = -1
QUARTER = 900


def upgrade() -> None:
    op.execute(
        "INSERT INTO usage_rollups (organization_id, dimension, grain, api_key_id, bucket, "
        "value, outcome, calls, credits) "
        f"SELECT organization_id, dimension, grain, {ALL_KEYS}, bucket, value, outcome, "
        "sum(calls), sum(credits) FROM usage_rollups "
        f"WHERE grain = {QUARTER} AND api_key_id <> {ALL_KEYS} "
        "GROUP BY organization_id, dimension, grain, bucket, value, outcome "
        "ORDER BY organization_id, dimension, grain, bucket, value, outcome"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM usage_rollups WHERE grain = {QUARTER} AND api_key_id = {ALL_KEYS}")
