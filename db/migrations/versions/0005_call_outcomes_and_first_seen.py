"""Call outcomes in events and rollups; the first event of each API key.

* ``usage_events.outcome`` (SMALLINT NOT NULL): the code of the call's outcome, filled from
  the status (stored events never carried the optional ``"outcome": "no_result"``);
* ``usage_rollups.outcome`` joins the primary key (last), and the rollups are refilled from
  the events, since existing rows cannot be split by outcome;
* ``api_keys.first_seen_at``: the earliest event of the key (NULL when it has none).

The outcome codes are those of ``domain.outcomes.OUTCOME_CODES`` when this was written,
spelt as literals: a migration keeps meaning what it meant.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUCCESS, NO_RESULT, RATE_LIMITED, CLIENT_ERROR, SERVER_ERROR = 1, 2, 3, 4, 5
# Only calls that failed differ from the column's initial SUCCESS: one pass over them.
OUTCOME_OF_STATUS = (
    f"CASE WHEN status = 404 THEN {NO_RESULT} WHEN status = 429 THEN {RATE_LIMITED} "
    f"WHEN status < 500 THEN {CLIENT_ERROR} ELSE {SERVER_ERROR} END"
)
COLUMNS = "organization_id, dimension, grain, bucket, api_key_id, value, calls, credits"
OLD_KEY = "organization_id, dimension, grain, api_key_id, bucket, value"
NEW_KEY = f"{OLD_KEY}, outcome"
# (grain in seconds, summed over every key) of each rollup row set, and the value each
# dimension (0 total, 1 endpoint, 2 source, 3 user) takes from an event: as of 0003.
GRAINS = ((900, False), (3600, False), (86400, False), (3600, True), (86400, True))
VALUES = {
    0: "''",
    1: "endpoint",
    2: "source",
    3: "coalesce(CAST(user_id AS TEXT), '')",
}


def _epoch(dialect: str) -> str:
    if dialect == "postgresql":
        return "CAST(floor(extract(epoch FROM occurred_at)) AS BIGINT)"
    # Cut to whole seconds before strftime, which rounds fractions to milliseconds
    # (db.dialect.SQLITE_EPOCH_SECOND; spelled out here, as a migration must not change).
    return "CAST(strftime('%s', substr(occurred_at, 1, 19)) AS INTEGER)"


def _refill_rollups(dialect: str) -> None:
    epoch = _epoch(dialect)
    for grain, all_keys in GRAINS:
        key = "-1" if all_keys else "coalesce(api_key_id, 0)"
        for dimension, value in VALUES.items():
            # A literal in GROUP BY would name a column by position: group by expressions.
            group = ["organization_id", f"{epoch} - {epoch} % {grain}", "outcome"]
            group += [] if all_keys else [key]
            group += [] if dimension == 0 else [value]
            op.execute(
                f"INSERT INTO usage_rollups ({COLUMNS}, outcome) "
                f"SELECT organization_id, {dimension}, {grain}, "
                f"{epoch} - {epoch} % {grain}, {key}, {value}, count(*), sum(credits), outcome "
                f"FROM usage_events GROUP BY {', '.join(group)}"
            )


def _sqlite_rollups_table(key: str, with_outcome: bool) -> None:
    outcome = "outcome SMALLINT NOT NULL, " if with_outcome else ""
    op.execute(
        "CREATE TABLE usage_rollups_new (organization_id INTEGER NOT NULL, "
        "dimension SMALLINT NOT NULL, grain INTEGER NOT NULL, bucket BIGINT NOT NULL, "
        f"api_key_id INTEGER NOT NULL, value TEXT NOT NULL, {outcome}calls BIGINT NOT NULL, "
        f"credits BIGINT NOT NULL, CONSTRAINT pk_usage_rollups PRIMARY KEY ({key})) "
        "WITHOUT ROWID"
    )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    # SQLite adds a NOT NULL column only with a default, and drops a default only by copying
    # the table: it keeps it there (the writer always sets the column).
    op.execute(f"ALTER TABLE usage_events ADD COLUMN outcome SMALLINT NOT NULL DEFAULT {SUCCESS}")
    op.execute(f"UPDATE usage_events SET outcome = {OUTCOME_OF_STATUS} WHERE status >= 400")
    if dialect == "postgresql":
        op.execute("ALTER TABLE usage_events ALTER COLUMN outcome DROP DEFAULT")
        op.execute("TRUNCATE usage_rollups")
        op.execute("ALTER TABLE usage_rollups ADD COLUMN outcome SMALLINT NOT NULL")
        op.execute("ALTER TABLE usage_rollups DROP CONSTRAINT pk_usage_rollups")
        op.execute(
            f"ALTER TABLE usage_rollups ADD CONSTRAINT pk_usage_rollups "
            f"PRIMARY KEY ({NEW_KEY}) INCLUDE (calls, credits)"
        )
    else:
        _sqlite_rollups_table(NEW_KEY, with_outcome=True)
        op.execute("DROP TABLE usage_rollups")
        op.execute("ALTER TABLE usage_rollups_new RENAME TO usage_rollups")
    _refill_rollups(dialect)

    op.add_column("api_keys", sa.Column("first_seen_at", sa.DateTime(timezone=True)))
    # One grouped pass over the events (no index leads with the key).
    op.execute(
        "UPDATE api_keys SET first_seen_at = firsts.at FROM ("
        "SELECT api_key_id, min(occurred_at) AS at FROM usage_events "
        "WHERE api_key_id IS NOT NULL GROUP BY api_key_id) AS firsts "
        "WHERE api_keys.id = firsts.api_key_id"
    )


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    op.drop_column("api_keys", "first_seen_at")
    summed = (
        f"SELECT {OLD_KEY}, sum(calls) AS calls, sum(credits) AS credits "
        f"FROM usage_rollups GROUP BY {OLD_KEY}"
    )
    columns = f"{OLD_KEY}, calls, credits"
    if dialect == "postgresql":
        op.execute(f"CREATE TEMPORARY TABLE rollups_without_outcome AS {summed}")
        op.execute("TRUNCATE usage_rollups")
        op.execute("ALTER TABLE usage_rollups DROP CONSTRAINT pk_usage_rollups")
        op.execute("ALTER TABLE usage_rollups DROP COLUMN outcome")
        op.execute(
            f"ALTER TABLE usage_rollups ADD CONSTRAINT pk_usage_rollups "
            f"PRIMARY KEY ({OLD_KEY}) INCLUDE (calls, credits)"
        )
        op.execute(f"INSERT INTO usage_rollups ({columns}) SELECT * FROM rollups_without_outcome")
        op.execute("DROP TABLE rollups_without_outcome")
    else:
        _sqlite_rollups_table(OLD_KEY, with_outcome=False)
        op.execute(f"INSERT INTO usage_rollups_new ({columns}) {summed}")
        op.execute("DROP TABLE usage_rollups")
        op.execute("ALTER TABLE usage_rollups_new RENAME TO usage_rollups")
    op.drop_column("usage_events", "outcome")
