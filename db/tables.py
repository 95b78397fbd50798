"""The schema: one ``MetaData`` with a naming convention, so migrations name constraints alike.

Raw ``usage_events`` are the truth. ``usage_rollups`` holds the same calls and credits summed
per organization, grain (15 minutes, 1 hour, 1 UTC day), bucket, API key, one report
dimension (total, endpoint, source or user) and call outcome; every usage query reads it.
Missing keys and users are stored as 0 in the rollup so the primary key needs no NULLs; at
every grain, rows with key ``ALL_KEYS`` (-1) hold the sums over every key, so an
organization-wide read does not grow with the number of keys.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only makes INTEGER PRIMARY KEY an auto-increment rowid alias, so BigInteger
# ids become INTEGER there.
Id = BigInteger().with_variant(Integer(), "sqlite")

organizations = Table(
    "organizations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("credit_allowance", BigInteger, nullable=False),
    Column("billing_cycle_anchor", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_event_at", UTCDateTime, nullable=True),
    # Moved up by every write that changes an answer about the organization's usage, keys
    # or users, in that write's transaction (db/data_version.py); the answer cache keys on it.
    Column("data_version", BigInteger, nullable=False, server_default="0"),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("organization_id", Id, ForeignKey("organizations.id"), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_users_organization_external", "organization_id", "external_id", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("organization_id", Id, ForeignKey("organizations.id"), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    # The earliest event of the key: ingestion moves it back (never forward), since events
    # arrive out of order; NULL until the key's first event.
    Column("first_seen_at", UTCDateTime, nullable=True),
    Index("uq_api_keys_organization_external", "organization_id", "external_id", unique=True),
)

# No foreign keys on the events (migration 0002): on PostgreSQL they cost a trigger query
# per row and key at insert, a third of ingestion's time. Ingestion resolves the
# organization, key and user of each event in the transaction that inserts it, and those
# rows are never deleted.
usage_events = Table(
    "usage_events",
    metadata,
    Column("organization_id", Id, primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("api_key_id", Id, nullable=True),
    Column("user_id", Id, nullable=True),
    Column("source", String(100), nullable=False),
    Column("endpoint", String(300), nullable=False),
    Column("status", SmallInteger, nullable=False),
    # domain.outcomes.OUTCOME_CODES of the call's outcome (derived from the status and the
    # event's optional "outcome" at validation, which the status alone cannot tell).
    Column("outcome", SmallInteger, nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Index("ix_usage_events_org_occurred", "organization_id", "occurred_at"),
)

usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("organization_id", Id, primary_key=True),
    Column("dimension", SmallInteger, primary_key=True),
    Column("grain", Integer, primary_key=True),
    # The key before the bucket: a read of one key, of a page of keys or of the ALL_KEYS
    # rows is one contiguous range of the primary key per piece.
    Column("api_key_id", Id, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("value", Text, primary_key=True),
    # Last in the key: a read of every outcome stays one contiguous range per piece, and a
    # filter on outcomes is a condition on rows already in that range. ALL_OUTCOMES rows
    # hold every outcome; SUCCESS has no rows (the rest of them: db/rollup_keys.py).
    Column("outcome", SmallInteger, primary_key=True),
    Column("calls", BigInteger, nullable=False),
    Column("credits", BigInteger, nullable=False),
    # SQLite: the primary key is the table (one b-tree, no rowid lookup per row read).
    sqlite_with_rowid=False,
)

# The rollup tail (docs/rollups.md): one row per event ingested and not yet added to the
# rollups. Ingestion inserts it with the event, in the same transaction; the folder
# (db/folding.py) deletes a chunk and adds it to ``usage_rollups`` in one statement, so an
# event is in exactly one of the two at any snapshot, and reads add the tail of their range.
usage_pending = Table(
    "usage_pending",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("organization_id", Id, nullable=False),
    Column("api_key_id", Id, nullable=False),  # NO_KEY (0) for calls without a key
    Column("user_id", Id, nullable=True),
    Column("source", String(100), nullable=False),
    Column("endpoint", String(300), nullable=False),
    Column("outcome", SmallInteger, nullable=False),
    Column("credits", BigInteger, nullable=False),
    # occurred_at in whole epoch seconds: what a rollup bucket is computed from.
    Column("epoch", BigInteger, nullable=False),
    # When the event was committed (epoch milliseconds, wall clock): the fold lag metric.
    Column("received_ms", BigInteger, nullable=False),
    # Reads add the tail of their range of one organization.
    Index("ix_usage_pending_organization_id", "organization_id", "epoch"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Credit alerts (docs/alerts.md). ``signing_secret`` is the webhook signing secret encrypted
# with the service's key (app/webhooks/secret_box.py): it must stay usable for signing, so
# it cannot be hashed like an access token. ``triggered_window*`` name the window the alert
# last fired in, so its state is read without looking at deliveries.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("organization_id", Id, ForeignKey("organizations.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("api_key_id", Id, ForeignKey("api_keys.id"), nullable=True),
    Column("window_kind", String(16), nullable=False),
    Column("threshold_credits", BigInteger, nullable=True),
    Column("threshold_percent", Double, nullable=True),
    Column("webhook_url", String(2000), nullable=False),
    Column("signing_secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_triggered_at", UTCDateTime, nullable=True),
    Column("triggered_window", String(16), nullable=True),
    Column("triggered_window_start", UTCDateTime, nullable=True),
    CheckConstraint(
        "(threshold_credits IS NULL) <> (threshold_percent IS NULL)", name="one_threshold"
    ),
    # The ingest path looks up the enabled alerts of a batch's organizations by this index.
    Index("ix_alerts_organization_id", "organization_id"),
)

# The outbox: one row per webhook message, written in the transaction that detected the
# crossing, then delivered (and retried) by the dispatcher (app/webhooks/dispatcher.py).
# The unique (alert, window kind, window start) makes "one alert.triggered per alert per
# window" a constraint that concurrent writers cannot break; test messages have no window
# (NULLs are distinct in a unique index on both databases).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("organization_id", Id, ForeignKey("organizations.id"), nullable=False),
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("window_kind", String(16), nullable=True),
    Column("window_start", UTCDateTime, nullable=True),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    # A random token per claim: a dispatcher records an attempt only while its claim holds.
    Column("claim", String(32), nullable=True),
    Index(
        "uq_webhook_deliveries_alert_window", "alert_id", "window_kind", "window_start", unique=True
    ),
    # The dispatcher's poll: pending messages by due time.
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    # An alert's deliveries, newest first.
    Index("ix_webhook_deliveries_alert_id", "alert_id", "id"),
)
