"""Initial schema: organizations, users, API keys, usage events, rollups, access tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("credit_allowance", sa.BigInteger(), nullable=False),
        sa.Column("billing_cycle_anchor", Instant, nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("last_event_at", Instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("slug", name="uq_organizations_slug"),
    )
    op.create_table(
        "users",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_users_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index(
        "uq_users_organization_external", "users", ["organization_id", "external_id"], unique=True
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("revoked_at", Instant, nullable=True),
        sa.Column("last_used_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_api_keys_organization_id_organizations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index(
        "uq_api_keys_organization_external",
        "api_keys",
        ["organization_id", "external_id"],
        unique=True,
    )
    op.create_table(
        "usage_events",
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("api_key_id", Id, nullable=True),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(300), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", Instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_usage_events_organization_id_organizations",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name="fk_usage_events_api_key_id_api_keys"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_usage_events_user_id_users"),
        sa.PrimaryKeyConstraint("organization_id", "event_id", name="pk_usage_events"),
    )
    op.create_index(
        "ix_usage_events_org_occurred", "usage_events", ["organization_id", "occurred_at"]
    )
    op.create_table(
        "usage_rollups",
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("dimension", sa.SmallInteger(), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("api_key_id", Id, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id",
            "dimension",
            "grain",
            "bucket",
            "api_key_id",
            "value",
            name="pk_usage_rollups",
        ),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("expires_at", Instant, nullable=True),
        sa.Column("revoked_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_access_tokens_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_access_tokens_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("access_tokens")
    op.drop_table("usage_rollups")
    op.drop_index("ix_usage_events_org_occurred", table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_index("uq_api_keys_organization_external", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("uq_users_organization_external", table_name="users")
    op.drop_table("users")
    op.drop_table("organizations")
