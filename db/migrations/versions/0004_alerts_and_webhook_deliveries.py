"""Alerts and the webhook outbox.

``alerts`` holds each organization's credit thresholds (per organization or per key, over a
day, week, month or billing cycle) with the encrypted webhook signing secret.
``webhook_deliveries`` is the outbox: a row is written in the ingest transaction that
detects a crossing, unique per (alert, window kind, window start), and the dispatcher
delivers and retries it (docs/alerts.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("api_key_id", Id, nullable=True),
        sa.Column("window_kind", sa.String(16), nullable=False),
        sa.Column("threshold_credits", sa.BigInteger(), nullable=True),
        sa.Column("threshold_percent", sa.Double(), nullable=True),
        sa.Column("webhook_url", sa.String(2000), nullable=False),
        sa.Column("signing_secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("updated_at", Instant, nullable=False),
        sa.Column("last_triggered_at", Instant, nullable=True),
        sa.Column("triggered_window", sa.String(16), nullable=True),
        sa.Column("triggered_window_start", Instant, nullable=True),
        sa.CheckConstraint(
            "(threshold_credits IS NULL) <> (threshold_percent IS NULL)",
            name="ck_alerts_one_threshold",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_alerts_organization_id_organizations",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name="fk_alerts_api_key_id_api_keys"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_organization_id", "alerts", ["organization_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("alert_id", Id, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("window_kind", sa.String(16), nullable=True),
        sa.Column("window_start", Instant, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("next_attempt_at", Instant, nullable=True),
        sa.Column("last_attempt_at", Instant, nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_webhook_deliveries_organization_id_organizations",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_webhook_deliveries_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("public_id", name="uq_webhook_deliveries_public_id"),
    )
    op.create_index(
        "uq_webhook_deliveries_alert_window",
        "webhook_deliveries",
        ["alert_id", "window_kind", "window_start"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_webhook_deliveries_alert_id", "webhook_deliveries", ["alert_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_alert_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("uq_webhook_deliveries_alert_window", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_alerts_organization_id", table_name="alerts")
    op.drop_table("alerts")
