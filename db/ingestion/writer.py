"""One atomic write: new events, the keys and users they name, and their rollups.

Exactly once: events are inserted with ``ON CONFLICT DO NOTHING`` on (organization, id)
and only the rows the database reports as inserted are added to the rollups, in the same
transaction. Two writers racing on the same id: the second waits for the first's commit
and then inserts nothing, so the event is counted once. Every multi-row write runs in
primary-key order, so concurrent batches lock rows in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import dialect
from db.dimensions import NO_KEY, Dimension
from db.engine import write_with_retry
from db.grains import DAY, HOUR, MICROS, QUARTER_HOUR
from db.ingestion.validation import EventError, Reference, ValidEvent, validate_events
from db.tables import api_keys, organizations, usage_events, usage_rollups, users

GRAIN_SECONDS = (QUARTER_HOUR // MICROS, HOUR // MICROS, DAY // MICROS)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """How many events were new and how many had been seen before (stored or in the batch)."""

    accepted: int
    duplicates: int


class IngestRejected(Exception):
    """The batch was refused whole; ``errors`` says which event and field, and why."""

    def __init__(self, errors: Sequence[EventError]) -> None:
        super().__init__(f"{len(errors)} invalid event(s)")
        self.errors = list(errors)


async def _resolve_organizations(
    conn: AsyncConnection, events: Sequence[ValidEvent]
) -> dict[str | int, int]:
    refs = {event.organization for event in events}
    ids = [ref for ref in refs if isinstance(ref, int)]
    slugs = [ref for ref in refs if isinstance(ref, str)]
    o = organizations.c
    rows = await conn.execute(select(o.id, o.slug).where(or_(o.id.in_(ids), o.slug.in_(slugs))))
    found: dict[str | int, int] = {}
    for row in rows:
        found[row.id] = row.id
        found[row.slug] = row.id
    return found


async def _register(
    conn: AsyncConnection,
    table: Table,
    wanted: dict[tuple[int, str], str | None],
    extra: dict[str, object],
    now: datetime,
) -> dict[tuple[int, str], int]:
    """Ids of (organization, external id) rows, creating the missing ones on first sight."""
    if not wanted:
        return {}
    pairs = sorted(wanted)
    existing = await _lookup(conn, table, pairs)
    missing = [pair for pair in pairs if pair not in existing]
    if missing:
        statement = dialect.insert(conn, table).on_conflict_do_nothing(
            index_elements=["organization_id", "external_id"]
        )
        await conn.execute(
            statement,
            [
                {
                    "organization_id": org,
                    "external_id": ext,
                    "name": wanted[(org, ext)] or ext,
                    "created_at": now,
                    **extra,
                }
                for org, ext in missing
            ],
        )
        existing.update(await _lookup(conn, table, missing))
    return existing


async def _lookup(
    conn: AsyncConnection, table: Table, pairs: list[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    c = table.c
    found: dict[tuple[int, str], int] = {}
    # Chunked: each pair is two bound parameters, and drivers cap a statement's parameters.
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        rows = await conn.execute(
            select(c.id, c.organization_id, c.external_id).where(
                tuple_(c.organization_id, c.external_id).in_(chunk)
            )
        )
        for row in rows:
            found[(row.organization_id, row.external_id)] = row.id
    return found


def _names(refs: list[tuple[int, Reference | None]]) -> dict[tuple[int, str], str | None]:
    names: dict[tuple[int, str], str | None] = {}
    for org, ref in refs:
        if ref is not None and names.get((org, ref.id)) is None:
            names[(org, ref.id)] = ref.name
    return names


def rollup_deltas(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """The rollup increments for inserted event rows, in primary-key order."""
    sums: dict[tuple[int, int, int, int, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        org = row["organization_id"]
        key = row["api_key_id"] or NO_KEY
        user = row["user_id"]
        credits = row["credits"]
        assert isinstance(org, int)
        assert isinstance(key, int)
        assert isinstance(credits, int)
        occurred_at = row["occurred_at"]
        assert isinstance(occurred_at, datetime)
        epoch = int(occurred_at.timestamp())
        values = (
            (Dimension.TOTAL, ""),
            (Dimension.ENDPOINT, str(row["endpoint"])),
            (Dimension.SOURCE, str(row["source"])),
            (Dimension.USER, "" if user is None else str(user)),
        )
        for grain in GRAIN_SECONDS:
            bucket = epoch - epoch % grain
            for dimension, value in values:
                slot = sums[(org, int(dimension), grain, bucket, key, value)]
                slot[0] += 1
                slot[1] += credits
    return [
        {
            "organization_id": org,
            "dimension": dimension,
            "grain": grain,
            "bucket": bucket,
            "api_key_id": key,
            "value": value,
            "calls": calls,
            "credits": credits,
        }
        for (org, dimension, grain, bucket, key, value), (calls, credits) in sorted(sums.items())
    ]


async def add_to_rollups(conn: AsyncConnection, deltas: list[dict[str, object]]) -> None:
    """Add increments to ``usage_rollups``, creating rows as needed."""
    if not deltas:
        return
    statement = dialect.insert(conn, usage_rollups)
    statement = statement.on_conflict_do_update(
        index_elements=[c.name for c in usage_rollups.primary_key.columns],
        set_={
            "calls": usage_rollups.c.calls + statement.excluded.calls,
            "credits": usage_rollups.c.credits + statement.excluded.credits,
        },
    )
    await conn.execute(statement, deltas)


def _payload(event: ValidEvent) -> tuple[object, ...]:
    return (
        event.api_key,
        event.user,
        event.source,
        event.endpoint,
        event.status,
        event.credits,
        event.occurred_at,
    )


def _first_of_each_id(
    events: Sequence[ValidEvent], orgs: dict[str | int, int]
) -> dict[tuple[int, str], ValidEvent]:
    """The first event of each (organization, id); a repeat must be the same event.

    A repeat with other fields is a producer bug (two calls under one idempotency key):
    keeping either silently would make the stored numbers depend on order, so the batch is
    refused instead.
    """
    unique: dict[tuple[int, str], ValidEvent] = {}
    errors: list[EventError] = []
    for event in events:
        first = unique.setdefault((orgs[event.organization], event.id), event)
        if first is not event and _payload(first) != _payload(event):
            reason = f"repeats the id of event {first.index} with different fields"
            errors.append(EventError(event.index, "id", reason))
    if errors:
        raise IngestRejected(errors)
    return unique


async def ingest_events(
    conn: AsyncConnection, events: Sequence[ValidEvent], *, now: datetime
) -> IngestResult:
    """Store new events and their rollups; the caller owns the transaction.

    Raises ``IngestRejected`` (before writing anything) when an event names an unknown
    organization.
    """
    if not events:
        return IngestResult(0, 0)
    orgs = await _resolve_organizations(conn, events)
    errors = [
        EventError(event.index, "organization", f"unknown organization {event.organization!r}")
        for event in events
        if event.organization not in orgs
    ]
    if errors:
        raise IngestRejected(errors)

    unique = _first_of_each_id(events, orgs)
    in_batch_duplicates = len(events) - len(unique)

    keyed = [(org, event.api_key) for (org, _), event in unique.items()]
    key_ids = await _register(conn, api_keys, _names(keyed), {}, now)
    people = [(org, event.user) for (org, _), event in unique.items()]
    user_ids = await _register(conn, users, _names(people), {"role": "MEMBER"}, now)

    rows = [
        {
            "organization_id": org,
            "event_id": event_id,
            "api_key_id": key_ids[(org, event.api_key.id)] if event.api_key else None,
            "user_id": user_ids[(org, event.user.id)] if event.user else None,
            "source": event.source,
            "endpoint": event.endpoint,
            "status": event.status,
            "credits": event.credits,
            "occurred_at": event.occurred_at,
        }
        for (org, event_id), event in sorted(unique.items())
    ]
    statement = (
        dialect.insert(conn, usage_events)
        .on_conflict_do_nothing(index_elements=["organization_id", "event_id"])
        .returning(usage_events.c.organization_id, usage_events.c.event_id)
    )
    inserted_keys = {
        (row.organization_id, row.event_id) for row in await conn.execute(statement, rows)
    }
    inserted = [row for row in rows if (row["organization_id"], row["event_id"]) in inserted_keys]
    await add_to_rollups(conn, rollup_deltas(inserted))
    await _touch(conn, inserted)
    return IngestResult(len(inserted), in_batch_duplicates + len(rows) - len(inserted))


async def _touch(conn: AsyncConnection, inserted: list[dict[str, object]]) -> None:
    """Move ``last_used_at`` of keys and ``last_event_at`` of organizations forward."""
    latest_key: dict[int, datetime] = {}
    latest_org: dict[int, datetime] = {}
    for row in inserted:
        at = row["occurred_at"]
        assert isinstance(at, datetime)
        org = row["organization_id"]
        assert isinstance(org, int)
        if latest_org.get(org) is None or at > latest_org[org]:
            latest_org[org] = at
        key = row["api_key_id"]
        if isinstance(key, int) and (latest_key.get(key) is None or at > latest_key[key]):
            latest_key[key] = at
    for table, column, latest in (
        (api_keys, api_keys.c.last_used_at, latest_key),
        (organizations, organizations.c.last_event_at, latest_org),
    ):
        for ident, at in sorted(latest.items()):
            await conn.execute(
                update(table)
                .where(table.c.id == ident)
                .where(or_(column.is_(None), column < at))
                .values({column.name: at})
            )


async def ingest(
    engine: AsyncEngine, raws: Sequence[object], *, now: datetime, first_index: int = 0
) -> IngestResult:
    """Validate a batch and write it atomically; ``IngestRejected`` lists every problem."""
    valid, errors = validate_events(raws, now, first_index=first_index)
    if errors:
        raise IngestRejected(errors)
    return await write_with_retry(engine, lambda conn: ingest_events(conn, valid, now=now))
