"""The dispatcher's side of the outbox: claim due messages, record how each attempt went.

A claim is short and happens before any network call: it stamps the rows with a random
claim token, counts the attempt and moves ``next_attempt_at`` to the end of a lease. The
HTTP request runs outside any transaction; its outcome is recorded only while the claim
token still matches. A dispatcher that dies mid-attempt leaves the row to be claimed
again when the lease ends, with the same ``webhook-id`` (at least once; receivers
deduplicate by that id).

On PostgreSQL the claim selects rows ``FOR UPDATE SKIP LOCKED``, so any number of
dispatchers (workers, hosts) each take different rows without waiting on one another.
SQLite has one writer at a time (``BEGIN IMMEDIATE``), which serialises claims on its one
host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import alerts, webhook_deliveries
from domain.alerts import DeliveryStatus

PENDING = DeliveryStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message this dispatcher may now send, with where and how to sign it."""

    id: int
    public_id: str
    payload: str
    attempts: int  # including the attempt this claim starts
    created_at: datetime
    attempted_at: datetime  # when this claim's attempt was made (its ``last_attempt_at``)
    webhook_url: str
    sealed_secret: str
    claim: str


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How one attempt went and what follows: SUCCEEDED, FAILED, or PENDING again."""

    id: int
    claim: str
    status: DeliveryStatus
    response_status: int | None
    error: str | None
    next_attempt_at: datetime | None


async def next_due(conn: AsyncConnection, *, now: datetime) -> bool:
    """Whether any message is due: a read, so an idle poll takes no write lock."""
    d = webhook_deliveries.c
    statement = select(d.id).where(d.status == PENDING, d.next_attempt_at <= now).limit(1)
    return (await conn.execute(statement)).first() is not None


async def claim_due(
    conn: AsyncConnection, *, now: datetime, limit: int, lease_until: datetime, claim: str
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` due messages, oldest due first, until ``lease_until``."""
    d = webhook_deliveries.c
    due = (
        select(d.id)
        .where(d.status == PENDING, d.next_attempt_at <= now)
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = (
        await conn.execute(
            update(webhook_deliveries)
            .where(d.id.in_(due.scalar_subquery()))
            .values(
                claim=claim,
                attempts=d.attempts + 1,
                last_attempt_at=now,
                next_attempt_at=lease_until,
            )
            .returning(d.id, d.public_id, d.payload, d.attempts, d.created_at, d.alert_id)
        )
    ).all()
    if not claimed:
        return []
    a = alerts.c
    targets = {
        row.id: (row.webhook_url, row.signing_secret)
        for row in await conn.execute(
            select(a.id, a.webhook_url, a.signing_secret).where(
                a.id.in_(sorted({row.alert_id for row in claimed}))
            )
        )
    }
    return [
        ClaimedMessage(
            id=row.id,
            public_id=row.public_id,
            payload=row.payload,
            attempts=row.attempts,
            created_at=row.created_at,
            attempted_at=now,
            webhook_url=targets[row.alert_id][0],
            sealed_secret=targets[row.alert_id][1],
            claim=claim,
        )
        for row in sorted(claimed, key=lambda row: row.id)
    ]


async def record_outcomes(conn: AsyncConnection, outcomes: Sequence[AttemptOutcome]) -> None:
    """Record attempts whose claim still holds (one executemany for the lot)."""
    if not outcomes:
        return
    d = webhook_deliveries.c
    statement = (
        update(webhook_deliveries)
        .where(d.id == bindparam("b_id"), d.claim == bindparam("b_claim"))
        .values(
            status=bindparam("b_status"),
            response_status=bindparam("b_response_status"),
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_next"),
            claim=None,
        )
    )
    await conn.execute(
        statement,
        [
            {
                "b_id": outcome.id,
                "b_claim": outcome.claim,
                "b_status": outcome.status.value,
                "b_response_status": outcome.response_status,
                "b_error": None if outcome.error is None else outcome.error[:300],
                "b_next": outcome.next_attempt_at,
            }
            for outcome in sorted(outcomes, key=lambda outcome: outcome.id)
        ],
    )
