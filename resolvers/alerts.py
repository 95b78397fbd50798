"""Alerts of the viewer's organization: list, create, update, delete, send a test webhook.

Each mutation is one write transaction on the request's connection. An alert id of another
organization, or one that is not an id at all, is NOT_FOUND exactly like an unknown id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from db.queries import alerts as queries
from db.queries.directory import find_api_key
from db.queries.reports import totals
from domain.alerts import (
    MAX_ALERTS_PER_ORGANIZATION,
    TEST_EVENT,
    AlertRecord,
    AlertState,
    AlertWindow,
    DeliveryRecord,
    Threshold,
    check_name,
    check_threshold,
    window_bounds,
)
from domain.errors import InvalidInput, NotFound
from resolvers.context import Context

DEFAULT_DELIVERIES = 10
# (alert id, how many of its newest deliveries)
DeliveriesKey = tuple[int, int]


def _autocommit(conn: AsyncConnection) -> bool:
    sync = conn.sync_connection
    return sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


@asynccontextmanager
async def _writing(context: Context) -> AsyncIterator[AsyncConnection]:
    """A write transaction on the request's connection.

    The connection is already in a read transaction (authentication read the token): end
    it, so the write sees the newest data. SQLite writers begin IMMEDIATE (take the write
    lock up front, as ``db.engine.writing`` does), so two writers queue instead of failing.
    On PostgreSQL the request's reads run in autocommit (no BEGIN and ROLLBACK round trips,
    ``app.graphql_route``): a write goes back to the engine's isolation level, so that
    ``begin()`` is a real transaction again.
    """
    async with context.db.connection() as conn:
        if conn.in_transaction():
            await conn.commit()
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _ = await conn.execution_options(sqlite_begin="IMMEDIATE")
        elif _autocommit(conn):
            _ = await conn.execution_options(isolation_level=conn.default_isolation_level)
        try:
            async with conn.begin():
                yield conn
        finally:
            if sqlite:
                _ = await conn.execution_options(sqlite_begin="DEFERRED")


def _alert_id(raw: str) -> int | None:
    text = raw.strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _not_found(raw: str, field: str) -> NotFound:
    return NotFound(f"No alert with id {raw!r}.", field=field)


async def _find(conn: AsyncConnection, context: Context, raw: str, field: str) -> AlertRecord:
    alert_id = _alert_id(raw)
    found = None
    if alert_id is not None:
        found = await queries.find_alert(
            conn, organization_id=context.organization.id, alert_id=alert_id
        )
    if found is None:
        raise _not_found(raw, field)
    return found


async def _key_id(conn: AsyncConnection, context: Context, key_id: str, field: str) -> int:
    key = await find_api_key(conn, organization_id=context.organization.id, external_id=key_id)
    if key is None:
        raise NotFound(f"No API key with id {key_id!r}.", field=field)
    return key.id


async def list_alerts(context: Context) -> list[AlertRecord]:
    """The viewer's organization's alerts, oldest first."""
    async with context.db.connection() as conn:
        return await queries.list_alerts(conn, organization_id=context.organization.id)


def state(context: Context, alert: AlertRecord) -> AlertState:
    """TRIGGERED when the alert has fired in its window of the request's "now"."""
    return alert.state(context.organization, context.clock())


@dataclass(frozen=True, slots=True)
class NewAlert:
    name: str
    key_id: str | None
    window: AlertWindow
    threshold_credits: int | None
    threshold_percent: float | None
    webhook_url: str


async def create_alert(context: Context, new: NewAlert) -> tuple[AlertRecord, str]:
    """Store the alert; return it and its signing secret (shown this once, then sealed)."""
    name = check_name(new.name, field="input")
    threshold = check_threshold(new.threshold_credits, new.threshold_percent, field="input")
    # The guard may resolve the host: done before the transaction, which it must not hold.
    url = await context.webhooks.check_url(new.webhook_url, field="input.webhookUrl")
    secret = queries.new_signing_secret()
    sealed = context.webhooks.seal(secret)
    organization_id = context.organization.id
    async with _writing(context) as conn:
        key = (
            None if new.key_id is None else await _key_id(conn, context, new.key_id, "input.keyId")
        )
        if await queries.count_alerts(conn, organization_id=organization_id) >= (
            MAX_ALERTS_PER_ORGANIZATION
        ):
            raise InvalidInput(
                f"An organization has at most {MAX_ALERTS_PER_ORGANIZATION} alerts: delete one "
                "first.",
                field="input",
            )
        alert_id = await queries.create_alert(
            conn,
            organization_id=organization_id,
            name=name,
            api_key_id=key,
            window=new.window,
            threshold=threshold,
            webhook_url=url,
            sealed_secret=sealed,
            now=context.clock(),
        )
        created = await queries.find_alert(conn, organization_id=organization_id, alert_id=alert_id)
    assert created is not None
    return created, secret


@dataclass(frozen=True, slots=True)
class AlertEdit:
    """What an update changes; None leaves a field as it is."""

    name: str | None = None
    key_id: str | None = None
    organization_wide: bool = False  # keyId: null, the alert watches every key again
    window: AlertWindow | None = None
    threshold_credits: int | None = None
    threshold_percent: float | None = None
    webhook_url: str | None = None
    enabled: bool | None = None


async def update_alert(context: Context, raw_id: str, edit: AlertEdit) -> AlertRecord:
    """Apply ``edit``. Giving one kind of threshold replaces the other."""
    name = None if edit.name is None else check_name(edit.name, field="input")
    threshold: Threshold | None = None
    if edit.threshold_credits is not None or edit.threshold_percent is not None:
        threshold = check_threshold(edit.threshold_credits, edit.threshold_percent, field="input")
    url = None
    if edit.webhook_url is not None:
        url = await context.webhooks.check_url(edit.webhook_url, field="input.webhookUrl")
    organization_id = context.organization.id
    async with _writing(context) as conn:
        current = await _find(conn, context, raw_id, "id")
        key: int | None = None if current.api_key is None else current.api_key.id
        if edit.organization_wide:
            key = None
        elif edit.key_id is not None:
            key = await _key_id(conn, context, edit.key_id, "input.keyId")
        changes = queries.AlertChanges(
            name=name or current.name,
            api_key_id=key,
            window=edit.window or current.window,
            threshold=threshold or current.threshold,
            webhook_url=url or current.webhook_url,
            enabled=current.enabled if edit.enabled is None else edit.enabled,
        )
        await queries.update_alert(
            conn,
            organization_id=organization_id,
            alert_id=current.id,
            changes=changes,
            now=context.clock(),
        )
        updated = await queries.find_alert(
            conn, organization_id=organization_id, alert_id=current.id
        )
    assert updated is not None
    return updated


async def delete_alert(context: Context, raw_id: str) -> bool:
    """Delete the alert and its deliveries."""
    async with _writing(context) as conn:
        alert = await _find(conn, context, raw_id, "id")
        return await queries.delete_alert(
            conn, organization_id=context.organization.id, alert_id=alert.id
        )


async def send_test_webhook(context: Context, raw_id: str) -> DeliveryRecord:
    """Queue an ``alert.test`` message with the alert's current window and consumption; the
    dispatcher sends it like any other (poll the alert's deliveries for the outcome)."""
    organization = context.organization
    now = context.clock()
    async with _writing(context) as conn:
        alert = await _find(conn, context, raw_id, "alertId")
        window = window_bounds(alert.window, organization, now)
        consumed = await totals(
            conn,
            organization_id=organization.id,
            start=window[0],
            end=window[1],
            api_key_ids=None if alert.api_key is None else [alert.api_key.id],
        )
        return await queries.enqueue_test_message(
            conn,
            new=queries.NewMessage(
                alert=alert,
                organization=organization,
                event=TEST_EVENT,
                window=window,
                consumed=consumed.credits,
                window_kind=None,
            ),
            now=now,
        )


def deliveries_loader(context: Context) -> DataLoader[DeliveriesKey, list[DeliveryRecord]]:
    """A loader of the newest deliveries of alerts: one statement for all the alerts of a
    list (per distinct ``first``)."""

    async def load(keys: Sequence[DeliveriesKey]) -> list[list[DeliveryRecord]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for alert_id, first in keys:
            groups[first].append(alert_id)
        found: dict[DeliveriesKey, list[DeliveryRecord]] = {}
        async with context.db.connection() as conn:
            for first, alert_ids in groups.items():
                per_alert = await queries.recent_deliveries(
                    conn,
                    organization_id=context.organization.id,
                    alert_ids=alert_ids,
                    first=first,
                )
                for alert_id, records in per_alert.items():
                    found[(alert_id, first)] = records
        return [found.get(key, []) for key in keys]

    return DataLoader(load)


def check_first(context: Context, first: int | None) -> int:
    """How many deliveries to list: ``first``, the default when null, within the page size."""
    if first is None:
        return DEFAULT_DELIVERIES
    limit = context.limits.max_page_size
    if not 0 <= first <= limit:
        raise InvalidInput(f"first must be between 0 and {limit}.", field="first")
    return first
