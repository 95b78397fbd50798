"""The dispatcher: claims due messages from the outbox, sends them, records each outcome.

It runs inside every ``creditlens serve`` worker (the app's lifespan) and as
``creditlens webhooks run``. Up to ``webhook_concurrency`` attempts run at once; as they
finish, their outcomes are recorded together in one short transaction and free slots are
refilled. When nothing is due it polls every ``webhook_poll_seconds`` with one indexed
read. See ``db.queries.webhook_deliveries`` for claims and leases (how several workers or
hosts share the outbox, and what survives a crash).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from app.webhooks import signing
from app.webhooks.secret_box import SecretBox, SecretUnreadable
from app.webhooks.sender import new_client, post
from app.webhooks.url_guard import Resolver, UnsafeUrl, system_resolver
from db.engine import write_with_retry
from db.queries.webhook_deliveries import (
    AttemptOutcome,
    ClaimedMessage,
    claim_due,
    next_due,
    record_outcomes,
)
from domain.alerts import DeliveryStatus, RetryPolicy
from domain.clock import Clock, system_clock

log = logging.getLogger("creditlens.webhooks")
T = TypeVar("T")
# Outcomes wait at most this long to be recorded together: one transaction for many.
FLUSH_SECONDS = 0.05


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry schedule of the ``webhook_retry_*`` settings."""
    return RetryPolicy(
        base=timedelta(seconds=settings.webhook_retry_base_seconds),
        cap=timedelta(seconds=settings.webhook_retry_max_seconds),
        period=timedelta(seconds=settings.webhook_retry_period_seconds),
    )


class Dispatcher:
    """Delivers the outbox of one database; ``run`` until ``stop`` is set."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.resolver = resolver
        self.box = SecretBox(settings.webhook_secret_key.get_secret_value())
        self.retries = retry_policy(settings)
        self.random = random.SystemRandom()
        self.sent = 0  # attempts made by this dispatcher (for benchmarks and logs)
        self.failing: str | None = None  # the database error of an ongoing outage

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish the attempts already started.

        Database work is batched so that it does not pace the sending: slots are refilled
        once half of them are free (one claim for the lot), and outcomes are recorded
        together, at the latest ``FLUSH_SECONDS`` after the first of them.
        """
        capacity = self.settings.webhook_concurrency
        poll = self.settings.webhook_poll_seconds
        running: set[asyncio.Task[AttemptOutcome]] = set()
        finished: list[AttemptOutcome] = []
        next_poll = 0.0
        flush_by = 0.0
        async with new_client(
            timeout=self.settings.webhook_timeout_seconds, connections=capacity
        ) as client:
            while not (stop.is_set() and not running):
                now = time.monotonic()
                if not stop.is_set() and now >= next_poll and len(running) <= capacity // 2:
                    await self._flush(finished)
                    wanted = capacity - len(running)
                    claimed = await self._guarded(self._claim(wanted), [])
                    running.update(
                        asyncio.create_task(self._attempt(client, message)) for message in claimed
                    )
                    # A full claim means more may be due: claim again once slots free up.
                    next_poll = 0.0 if len(claimed) == wanted else now + poll
                deadlines = [flush_by] if finished else []
                if not stop.is_set() and next_poll:
                    deadlines.append(next_poll)
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                if running:
                    done, running = await asyncio.wait(
                        running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if done and not finished:
                        flush_by = time.monotonic() + FLUSH_SECONDS
                    finished.extend(task.result() for task in done)
                elif timeout:
                    await _wait_for(stop, timeout)
                if finished and (not running or stop.is_set() or time.monotonic() >= flush_by):
                    await self._flush(finished)

    async def _flush(self, finished: list[AttemptOutcome]) -> None:
        """Record the outcomes gathered so far, in one transaction, and forget them."""
        if finished:
            await self._guarded(self._record(list(finished)), None)
            finished.clear()

    async def _guarded(self, work: Awaitable[T], fallback: T) -> T:
        """``work``, or ``fallback`` when the database fails: the loop outlives an outage.

        A claim that fails claims nothing; outcomes that cannot be recorded are retried when
        their lease ends (the same webhook-id, so receivers see a duplicate at worst).
        """
        try:
            result = await work
        except (SQLAlchemyError, OSError) as error:
            # Logged when the failure starts or changes, not at every poll of an outage.
            kind = type(error).__name__
            if kind != self.failing:
                log.error("webhook dispatcher: the database failed (%s); retrying", kind)
                self.failing = kind
            return fallback
        if self.failing:
            log.warning("webhook dispatcher: the database answers again")
            self.failing = None
        return result

    async def run_once(self) -> int:
        """Claim and attempt what is due now, once; return how many attempts were made."""
        async with new_client(
            timeout=self.settings.webhook_timeout_seconds,
            connections=self.settings.webhook_concurrency,
        ) as client:
            claimed = await self._guarded(self._claim(self.settings.webhook_concurrency), [])
            outcomes = await asyncio.gather(*(self._attempt(client, m) for m in claimed))
            await self._guarded(self._record(list(outcomes)), None)
        return len(claimed)

    async def _claim(self, limit: int) -> list[ClaimedMessage]:
        if not self._database_exists():
            return []
        now = self.clock()
        async with self.engine.connect() as conn:
            if not await next_due(conn, now=now):
                return []
        lease = timedelta(seconds=self.settings.webhook_lease_seconds)
        token = secrets.token_hex(16)
        return await write_with_retry(
            self.engine,
            lambda conn: claim_due(
                conn, now=now, limit=limit, lease_until=now + lease, claim=token
            ),
        )

    def _database_exists(self) -> bool:
        """SQLite creates a missing file on connect; a poll must not recreate a database
        that was removed (``/readyz`` reports it gone)."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or ":memory:" in url.database:
            return True
        return Path(url.database).exists()

    async def _record(self, outcomes: list[AttemptOutcome]) -> None:
        if outcomes:
            await write_with_retry(self.engine, lambda conn: record_outcomes(conn, outcomes))

    async def _attempt(self, client: httpx.AsyncClient, message: ClaimedMessage) -> AttemptOutcome:
        body = message.payload.encode()
        status: int | None = None
        error: str | None
        try:
            secret = self.box.open(message.sealed_secret)
            timestamp = int(self.clock().timestamp())
            response = await post(
                client,
                message.webhook_url,
                headers=signing.headers(secret, message.public_id, timestamp, body),
                body=body,
                time_limit=self.settings.webhook_timeout_seconds,
                allow_insecure=self.settings.webhook_allow_insecure,
                resolver=self.resolver,
            )
            status, error = response.status, response.error
            if response.ok:
                error = None
            elif error is None:
                error = f"the receiver answered HTTP {status}"
        except (UnsafeUrl, SecretUnreadable) as refusal:
            error = str(refusal)
        except Exception:  # one bad message must not stop the others
            log.exception("webhook attempt of %s failed unexpectedly", message.public_id)
            error = "internal error while sending"
        self.sent += 1
        if error is None:
            return AttemptOutcome(
                message.id, message.claim, DeliveryStatus.SUCCEEDED, status, None, None
            )
        following = self.retries.next_attempt(
            attempts=message.attempts,
            created_at=message.created_at,
            now=self.clock(),
            jitter=self.random.random(),
            attempted_at=message.attempted_at,
        )
        log.warning(
            "webhook attempt %d of %s failed: %s%s",
            message.attempts,
            message.public_id,
            error,
            "" if following else "; giving up",
            extra={"webhook_id": message.public_id},
        )
        return AttemptOutcome(
            message.id,
            message.claim,
            DeliveryStatus.PENDING if following else DeliveryStatus.FAILED,
            status,
            error,
            following,
        )


async def _wait_for(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


@asynccontextmanager
async def dispatching(
    engine: AsyncEngine, settings: Settings, *, clock: Clock = system_clock
) -> AsyncIterator[None]:
    """Run the dispatcher in the background for the life of the block (the app lifespan),
    when ``webhook_dispatcher`` is on; on exit, stop claiming and finish the attempts in
    flight (each bounded by ``webhook_timeout_seconds``)."""
    if not settings.webhook_dispatcher:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(Dispatcher(engine, settings, clock=clock).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def run_until_signalled(engine: AsyncEngine, settings: Settings) -> None:
    """``creditlens webhooks run``: deliver until SIGINT or SIGTERM, then finish the
    attempts in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("webhook dispatcher started")
    await Dispatcher(engine, settings).run(stop)
    log.info("webhook dispatcher stopped")
