"""``organizations.data_version``: a counter every write that changes an answer moves up.

Ingestion (a batch with new events), a new user or key, and a change of the organization's
own row add 1 to it in the transaction of the write, so an answer computed at one value
stays right for as long as the value stays (the answer cache keys on it; the one
authentication statement reads it with the organization). Existing rows start at 0.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL (11+) and SQLite both add the column without
    # rewriting the table, and every existing row reads 0.
    op.add_column(
        "organizations",
        sa.Column("data_version", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("organizations", "data_version")
