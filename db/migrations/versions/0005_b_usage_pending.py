"""The rollup tail ``usage_pending`` (issue 15, docs/rollups.md).

Ingestion writes each new event and one pending row in its transaction instead of ~20
rollup upserts; the folder in ``serve`` adds pending rows to the rollups in large batches
and deletes them in the same statement. The table starts empty: the rollups already hold
every stored event.

Revision ID: 0005b
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005b"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = "organization_id, dimension, grain, bucket, api_key_id, value, outcome, calls, credits"
KEY = "organization_id, dimension, grain, api_key_id, bucket, value, outcome"


def upgrade() -> None:
    op.create_table(
        "usage_pending",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("api_key_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(300), nullable=False),
        sa.Column("outcome", sa.SmallInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_pending"),
    )
    op.create_index(
        "ix_usage_pending_organization_id", "usage_pending", ["organization_id", "epoch"]
    )


def downgrade() -> None:
    # Pending events must reach the rollups before the tail goes: 0005 keeps them inline.
    # Grains 900/3600/86400 per key, 3600/86400 over all keys (-1), dimensions 0-3, as of
    # this revision.
    grains = ((900, False), (3600, False), (86400, False), (3600, True), (86400, True))
    values = {0: "''", 1: "endpoint", 2: "source", 3: "coalesce(CAST(user_id AS TEXT), '')"}
    for grain, all_keys in grains:
        key = "-1" if all_keys else "api_key_id"
        for dimension, value in values.items():
            group = ["organization_id", f"epoch - epoch % {grain}", "outcome"]
            group += [] if all_keys else [key]
            group += [] if dimension == 0 else [value]
            op.execute(
                f"INSERT INTO usage_rollups ({COLUMNS}) "
                f"SELECT organization_id, {dimension}, {grain}, epoch - epoch % {grain}, {key}, "
                f"{value}, outcome, count(*), sum(credits) FROM usage_pending WHERE true "
                f"GROUP BY {', '.join(group)} "
                f"ON CONFLICT ({KEY}) DO UPDATE SET calls = usage_rollups.calls + excluded.calls, "
                "credits = usage_rollups.credits + excluded.credits"
            )
    op.drop_index("ix_usage_pending_organization_id", table_name="usage_pending")
    op.drop_table("usage_pending")
