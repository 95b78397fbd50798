"""One atomic write: new events, the keys and users they name, and their pending rows.

Exactly once: events are inserted with ``ON CONFLICT DO NOTHING`` on (organization, id)
and only the rows the database reports as inserted get a pending row (the rollup tail that
db/folding.py adds to the rollups), in the same transaction. Two writers racing on the
same id: the second waits for the first's commit and then inserts nothing, so the event is
counted once. Every multi-row write runs in
primary-key order, so concurrent batches lock rows in the same order and cannot deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import dialect
from db.engine import write_with_retry
from db.ingestion import bulk
from db.ingestion.alerts import record_crossings
from db.ingestion.bulk import EventRow, KeySpan
from db.ingestion.known_ids import KnownIds, Learned, known_ids
from db.ingestion.validation import EventError, Reference, ValidEvent, validate_events
from db.tables import api_keys, organizations, users
from domain.outcomes import OUTCOME_CODES
from domain.roles import Role


@dataclass(frozen=True, slots=True)
class IngestResult:
    """How many events were new and how many had been seen before (stored or in the batch)."""

    accepted: int
    duplicates: int
    # The organizations that got new events: live usage tells their subscribers.
    organization_ids: frozenset[int] = frozenset()


class IngestRejected(Exception):
    """The batch was refused whole; ``errors`` says which event and field, and why."""

    def __init__(self, errors: Sequence[EventError]) -> None:
        super().__init__(f"{len(errors)} invalid event(s)")
        self.errors = list(errors)


async def _resolve_organizations(
    conn: AsyncConnection,
    events: Sequence[ValidEvent],
    known: KnownIds | None = None,
    learned: Learned | None = None,
) -> dict[str | int, int]:
    """Our id of each organization the events name (by id or slug) that exists; those
    ``known`` are not looked up, those found go to ``learned``."""
    refs = {event.organization for event in events}
    found, unknown = known.split("organizations", refs) if known else ({}, list(refs))
    if not unknown:
        return found
    ids = [ref for ref in unknown if isinstance(ref, int)]
    slugs = [ref for ref in unknown if isinstance(ref, str)]
    o = organizations.c
    rows = await conn.execute(select(o.id, o.slug).where(or_(o.id.in_(ids), o.slug.in_(slugs))))
    looked_up: dict[str | int, int] = {}
    for row in rows:
        looked_up[row.id] = row.id
        looked_up[row.slug] = row.id
    if learned is not None:
        learned.add("organizations", looked_up)
    found.update(looked_up)
    return found


async def _register(
    conn: AsyncConnection,
    table: Table,
    wanted: dict[tuple[int, str], str | None],
    extra: dict[str, object],
    now: datetime,
    created: set[int],
    known: KnownIds | None = None,
    learned: Learned | None = None,
) -> dict[tuple[int, str], int]:
    """Ids of (organization, external id) rows, creating the missing ones on first sight;
    adds to ``created`` the organizations this may have added rows to (their answers
    changed: their data version must move, even if none of the batch's events is new).
    Ids already ``known`` (committed earlier) are not looked up; those read or created
    here go to ``learned``, for ``known`` once this transaction has committed."""
    if not wanted:
        return {}
    pairs = sorted(wanted)
    existing, unknown = known.split(table.name, pairs) if known else ({}, pairs)
    if not unknown:
        return existing
    found = await _lookup(conn, table, unknown)
    missing = [pair for pair in unknown if pair not in found]
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
        # A pair a concurrent batch inserted first is counted too: one version too many
        # is harmless, one too few would keep a stale answer.
        created.update(org for org, _ in missing)
        found.update(await _lookup(conn, table, missing))
    if learned is not None:
        learned.add(table.name, found)
    existing.update(found)
    return existing


async def _lookup(
    conn: AsyncConnection, table: Table, pairs: list[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """Ids of the stored (organization, external id) pairs, through ``bulk.lookup``: a
    driver statement, since compiling a tuple IN of hundreds of pairs (live traffic of many
    tenants names ~1,000 keys and users a batch) cost more than the insert of the events."""
    return await bulk.lookup(conn, table.name, pairs)


def _names(refs: list[tuple[int, Reference | None]]) -> dict[tuple[int, str], str | None]:
    names: dict[tuple[int, str], str | None] = {}
    for org, ref in refs:
        if ref is not None and names.get((org, ref.id)) is None:
            names[(org, ref.id)] = ref.name
    return names


def _payload(event: ValidEvent) -> tuple[object, ...]:
    return (
        event.api_key,
        event.user,
        event.source,
        event.endpoint,
        event.status,
        event.outcome,
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
    conn: AsyncConnection,
    events: Sequence[ValidEvent],
    *,
    now: datetime,
    known: KnownIds | None = None,
    learned: Learned | None = None,
) -> IngestResult:
    """Store new events and their pending rows; the caller owns the transaction.

    Organizations, keys and users whose ids are ``known`` are not looked up; the ids this
    reads or creates go to ``learned`` (db/ingestion/known_ids.py: only the caller knows
    when they are committed). Raises ``IngestRejected`` (before writing anything) when an
    event names an unknown organization.
    """
    if not events:
        return IngestResult(0, 0)
    orgs = await _resolve_organizations(conn, events, known, learned)
    errors = [
        EventError(event.index, "organization", f"unknown organization {event.organization!r}")
        for event in events
        if event.organization not in orgs
    ]
    if errors:
        raise IngestRejected(errors)

    unique = _first_of_each_id(events, orgs)
    in_batch_duplicates = len(events) - len(unique)

    created: set[int] = set()
    keyed = [(org, event.api_key) for (org, _), event in unique.items()]
    key_ids = await _register(conn, api_keys, _names(keyed), {}, now, created, known, learned)
    people = [(org, event.user) for (org, _), event in unique.items()]
    member: dict[str, object] = {"role": Role.MEMBER.value}
    user_ids = await _register(conn, users, _names(people), member, now, created, known, learned)

    rows: list[EventRow] = [
        (
            org,
            event_id,
            key_ids[(org, event.api_key.id)] if event.api_key else None,
            user_ids[(org, event.user.id)] if event.user else None,
            event.source,
            event.endpoint,
            event.status,
            OUTCOME_CODES[event.outcome],
            event.credits,
            event.occurred_at,
        )
        for (org, event_id), event in sorted(unique.items())
    ]
    # The wall clock, not ``now`` (a test's clock): the fold lag is measured against it.
    received_ms = time.time_ns() // 1_000_000
    if conn.dialect.name == "postgresql":
        spans = await bulk.write_postgresql(conn, rows, received_ms=received_ms)
    else:
        spans = await bulk.write_sqlite(conn, rows, received_ms=received_ms)
    newest = [(org, key, count, latest) for org, key, count, latest, _ in spans]
    accepted = sum(count for _, _, count, _ in newest)
    await _touch(conn, spans, created)
    # Alert crossings commit with the events that made them (db/ingestion/alerts.py).
    await record_crossings(conn, newest, now=now)
    return IngestResult(
        accepted,
        in_batch_duplicates + len(rows) - accepted,
        frozenset(org for org, _, count, _ in newest if count),
    )


async def _touch(conn: AsyncConnection, spans: list[KeySpan], created: set[int]) -> None:
    """Move ``last_used_at`` of keys and ``last_event_at`` of organizations forward, and
    ``first_seen_at`` of keys back (events arrive out of order); move ``data_version`` up
    for every organization with new events or new keys or users (``created``).

    ``spans`` name only the events this batch inserted: a batch of duplicates changes no
    answer and moves no version, unless a duplicate named a key or user not stored yet (a
    resend with other fields than its first copy), which registration still adds.
    """
    latest_key: dict[int, datetime] = {}
    earliest_key: dict[int, datetime] = {}
    latest_org: dict[int, datetime | None] = dict.fromkeys(created)
    for org, key, _, at, first in spans:
        known = latest_org.get(org)
        if known is None or at > known:
            latest_org[org] = at
        if key is not None:
            # One span per (organization, key), and a key belongs to one organization.
            latest_key[key] = at
            earliest_key[key] = first
    await bulk.widen_key_spans(
        conn, {key: (earliest_key[key], latest_key[key]) for key in latest_key}
    )
    await bulk.advance_organizations(conn, latest_org)


def prepare(raws: Sequence[object], *, now: datetime, first_index: int = 0) -> list[ValidEvent]:
    """The valid events of a batch; ``IngestRejected`` lists every problem. No I/O."""
    valid, errors = validate_events(raws, now, first_index=first_index)
    if errors:
        raise IngestRejected(errors)
    return valid


async def write(engine: AsyncEngine, valid: Sequence[ValidEvent], *, now: datetime) -> IngestResult:
    """Write prepared events atomically, again from the start after a deadlock; the ids of
    organizations, keys and users it resolved are remembered for the engine once it has
    committed."""
    known = known_ids(engine)
    attempts: list[Learned] = []

    async def attempt(conn: AsyncConnection) -> IngestResult:
        attempts.append(Learned())
        return await ingest_events(conn, valid, now=now, known=known, learned=attempts[-1])

    result = await write_with_retry(engine, attempt)
    # The last attempt is the one that committed; earlier ones rolled back.
    known.remember(attempts[-1])
    return result


async def ingest(
    engine: AsyncEngine, raws: Sequence[object], *, now: datetime, first_index: int = 0
) -> IngestResult:
    """Validate a batch and write it atomically; ``IngestRejected`` lists every problem."""
    return await write(engine, prepare(raws, now=now, first_index=first_index), now=now)
