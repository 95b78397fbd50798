"""All-outcomes rollup rows; the implied outcome's rows dropped (docs/rollups.md, "Layout").

Each (organization, dimension, grain, key, bucket, value) cell gets a row summed over every
outcome (outcome 0), and loses the row of SUCCESS, which reads now take as the all-outcomes
row less the other outcomes' rows. A read without an outcome filter then takes one row per
cell instead of one per outcome present in it. Pending rows keep their real outcome (the
folder writes the new layout). Codes are literal: migrations are frozen history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_OUTCOMES = 0
SUCCESS = 1
COLUMNS = "organization_id, dimension, grain, api_key_id, bucket, value, outcome, calls, credits"
CELL = "organization_id, dimension, grain, api_key_id, bucket, value"


def upgrade() -> None:
    # Grouped in the primary key's order, so the new rows go in as one ordered stream.
    op.execute(
        f"INSERT INTO usage_rollups ({COLUMNS}) "
        f"SELECT {CELL}, {ALL_OUTCOMES}, sum(calls), sum(credits) FROM usage_rollups "
        f"GROUP BY {CELL} ORDER BY {CELL}"
    )
    op.execute(f"DELETE FROM usage_rollups WHERE outcome = {SUCCESS}")


def downgrade() -> None:
    # SUCCESS is what the all-outcomes row holds beyond the other outcomes' rows; a cell
    # with none (every call failed) gets no row, as before.
    op.execute(
        f"INSERT INTO usage_rollups ({COLUMNS}) "
        f"SELECT {CELL}, {SUCCESS}, "
        f"sum(CASE WHEN outcome = {ALL_OUTCOMES} THEN calls ELSE -calls END), "
        f"sum(CASE WHEN outcome = {ALL_OUTCOMES} THEN credits ELSE -credits END) "
        f"FROM usage_rollups GROUP BY {CELL} "
        f"HAVING sum(CASE WHEN outcome = {ALL_OUTCOMES} THEN calls ELSE -calls END) > 0 "
        f"ORDER BY {CELL}"
    )
    op.execute(f"DELETE FROM usage_rollups WHERE outcome = {ALL_OUTCOMES}")
