"""Alerts of an organization, and the webhook messages written for them.

Every statement filters by organization: an alert id of another organization finds
nothing, exactly like an id that does not exist.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import alerts, api_keys, organizations, webhook_deliveries
from domain.alerts import (
    AlertRecord,
    AlertWindow,
    DeliveryRecord,
    DeliveryStatus,
    Threshold,
    message,
)
from domain.records import ApiKeyRecord, OrganizationRecord

# Standard Webhooks: the secret is "whsec_" and the base64 of the HMAC key (32 random bytes).
SECRET_PREFIX = "whsec_"
# The ``webhook-id`` of a message: the same on every attempt, so receivers can deduplicate.
MESSAGE_PREFIX = "msg_"

_KEY_COLUMNS = [c.label(f"key_{c.name}") for c in api_keys.c]


def new_signing_secret() -> str:
    """A fresh signing secret, in the Standard Webhooks format ``whsec_<base64>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """A fresh ``webhook-id``: 144 random bits."""
    return MESSAGE_PREFIX + secrets.token_urlsafe(18)


def alert_record(row: Mapping[Any, Any]) -> AlertRecord:
    """A record from a row of ``alerts`` joined (outer) with ``_KEY_COLUMNS``."""
    key = None
    if row["key_id"] is not None:
        key = ApiKeyRecord(**{c.name: row[f"key_{c.name}"] for c in api_keys.c})
    triggered = row["triggered_window"]
    return AlertRecord(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        api_key=key,
        window=AlertWindow(row["window_kind"]),
        threshold=Threshold(row["threshold_credits"], row["threshold_percent"]),
        webhook_url=row["webhook_url"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_triggered_at=row["last_triggered_at"],
        triggered_window=None if triggered is None else AlertWindow(triggered),
        triggered_window_start=row["triggered_window_start"],
    )


def select_alerts() -> Select[Any]:
    """Alerts with the columns of their key (NULL for an organization-wide alert)."""
    a = alerts.c
    columns = [c for c in alerts.c if c.name != "signing_secret"]
    return select(*columns, *_KEY_COLUMNS).select_from(
        alerts.outerjoin(api_keys, api_keys.c.id == a.api_key_id)
    )


async def list_alerts(conn: AsyncConnection, *, organization_id: int) -> list[AlertRecord]:
    """The organization's alerts, oldest first (at most ``MAX_ALERTS_PER_ORGANIZATION``)."""
    rows = await conn.execute(
        select_alerts().where(alerts.c.organization_id == organization_id).order_by(alerts.c.id)
    )
    return [alert_record(row._mapping) for row in rows]


async def find_alert(
    conn: AsyncConnection, *, organization_id: int, alert_id: int
) -> AlertRecord | None:
    """The organization's alert ``alert_id``; None for an alert of any other organization."""
    a = alerts.c
    row = (
        await conn.execute(
            select_alerts().where(a.organization_id == organization_id, a.id == alert_id)
        )
    ).first()
    return None if row is None else alert_record(row._mapping)


async def count_alerts(conn: AsyncConnection, *, organization_id: int) -> int:
    """How many alerts the organization has. Locks the organization's row (PostgreSQL) so
    two concurrent creations cannot both pass the limit on the count."""
    o = organizations.c
    await conn.execute(select(o.id).where(o.id == organization_id).with_for_update())
    a = alerts.c
    statement = select(func.count()).select_from(alerts).where(a.organization_id == organization_id)
    return int((await conn.execute(statement)).scalar_one())


async def create_alert(
    conn: AsyncConnection,
    *,
    organization_id: int,
    name: str,
    api_key_id: int | None,
    window: AlertWindow,
    threshold: Threshold,
    webhook_url: str,
    sealed_secret: str,
    now: datetime,
) -> int:
    """Store a new, enabled alert; ``sealed_secret`` is the encrypted signing secret."""
    result = await conn.execute(
        alerts.insert()
        .values(
            organization_id=organization_id,
            name=name,
            api_key_id=api_key_id,
            window_kind=window.value,
            threshold_credits=threshold.credits,
            threshold_percent=threshold.percent_of_allowance,
            webhook_url=webhook_url,
            signing_secret=sealed_secret,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        .returning(alerts.c.id)
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """The new values of an updated alert (all of them: the resolver merges the input)."""

    name: str
    api_key_id: int | None
    window: AlertWindow
    threshold: Threshold
    webhook_url: str
    enabled: bool


async def update_alert(
    conn: AsyncConnection,
    *,
    organization_id: int,
    alert_id: int,
    changes: AlertChanges,
    now: datetime,
) -> bool:
    """Apply ``changes``; False when the organization has no such alert."""
    a = alerts.c
    result = await conn.execute(
        update(alerts)
        .where(a.organization_id == organization_id, a.id == alert_id)
        .values(
            name=changes.name,
            api_key_id=changes.api_key_id,
            window_kind=changes.window.value,
            threshold_credits=changes.threshold.credits,
            threshold_percent=changes.threshold.percent_of_allowance,
            webhook_url=changes.webhook_url,
            enabled=changes.enabled,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def delete_alert(conn: AsyncConnection, *, organization_id: int, alert_id: int) -> bool:
    """Delete the alert and its messages, delivered or not; False when there is no such alert.

    Pending messages go too: they would be signed with a secret the receiver may have
    discarded, for an alert the admin no longer wants.
    """
    a, d = alerts.c, webhook_deliveries.c
    # Lock the alert first (PostgreSQL): an ingest writing a message for it holds this lock
    # until it commits, so the delete below sees that message and the alert's row is not
    # left referenced.
    locked = await conn.execute(
        select(a.id).where(a.organization_id == organization_id, a.id == alert_id).with_for_update()
    )
    if locked.first() is None:
        return False
    await conn.execute(
        delete(webhook_deliveries).where(
            d.organization_id == organization_id, d.alert_id == alert_id
        )
    )
    result = await conn.execute(
        delete(alerts).where(a.organization_id == organization_id, a.id == alert_id)
    )
    return bool(result.rowcount)


def delivery_record(row: Mapping[Any, Any]) -> DeliveryRecord:
    """A record from the columns of ``webhook_deliveries`` (a row mapping)."""
    return DeliveryRecord(
        id=row["id"],
        public_id=row["public_id"],
        alert_id=row["alert_id"],
        event=row["event"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        last_attempt_at=row["last_attempt_at"],
        next_attempt_at=row["next_attempt_at"],
        response_status=row["response_status"],
        last_error=row["last_error"],
    )


_DELIVERY_COLUMNS = [c for c in webhook_deliveries.c if c.name not in ("payload", "claim")]


async def recent_deliveries(
    conn: AsyncConnection, *, organization_id: int, alert_ids: Iterable[int], first: int
) -> dict[int, list[DeliveryRecord]]:
    """The newest ``first`` messages of each alert, newest first, in one statement."""
    ids = sorted(set(alert_ids))
    found: dict[int, list[DeliveryRecord]] = {alert_id: [] for alert_id in ids}
    if not ids or first <= 0:
        return found
    d = webhook_deliveries.c
    ranked = (
        select(
            *_DELIVERY_COLUMNS,
            func.row_number().over(partition_by=d.alert_id, order_by=d.id.desc()).label("rank"),
        )
        .where(d.organization_id == organization_id, d.alert_id.in_(ids))
        .subquery("ranked")
    )
    rows = await conn.execute(
        select(ranked).where(ranked.c.rank <= first).order_by(ranked.c.alert_id, ranked.c.id.desc())
    )
    for row in rows:
        found[row.alert_id].append(delivery_record(row._mapping))
    return found


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A webhook message to write to the outbox."""

    alert: AlertRecord
    organization: OrganizationRecord
    event: str
    window: tuple[datetime, datetime]
    consumed: int
    # Set for alert.triggered (one per alert and window), None for test messages.
    window_kind: AlertWindow | None


def outbox_row(new: NewMessage, *, now: datetime) -> dict[str, object]:
    """The ``webhook_deliveries`` row of a new message, due at once."""
    public_id = new_message_id()
    body = message(
        event=new.event,
        public_id=public_id,
        created_at=now,
        alert=new.alert,
        organization=new.organization,
        window=new.window,
        consumed=new.consumed,
    )
    return {
        "public_id": public_id,
        "organization_id": new.organization.id,
        "alert_id": new.alert.id,
        "event": new.event,
        "window_kind": None if new.window_kind is None else new.window_kind.value,
        "window_start": None if new.window_kind is None else new.window[0],
        # Serialised once: every attempt sends (and signs) the same bytes.
        "payload": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


async def enqueue_test_message(
    conn: AsyncConnection, *, new: NewMessage, now: datetime
) -> DeliveryRecord:
    """Write a test message to the outbox; the dispatcher delivers it like any other."""
    row = outbox_row(new, now=now)
    inserted = await conn.execute(
        webhook_deliveries.insert().values(**row).returning(*_DELIVERY_COLUMNS)
    )
    return delivery_record(inserted.one()._mapping)
