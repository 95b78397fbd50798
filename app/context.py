"""What every resolver gets: the viewer, one database connection, loaders and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request

from app.clock import Clock
from app.settings import Settings
from db.queries.directory import OrganizationRow, UserRow

if TYPE_CHECKING:
    from db.loaders import Loaders
    from resolvers.time_range import ResolvedRange
    from resolvers.usage import TimeRangeArgs


class RequestDatabase:
    """One connection per request, opened on first use and closed at the end.

    strawberry resolves sibling fields concurrently, and one connection must never be used
    by two tasks at once, so every use holds a lock. Measured: a request's queries are short
    index reads, so serialising them costs less than opening a connection per field.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock:
            if self._closed:
                # graphql-core may still run sibling fields of a failed non-null field
                # after the response is made; they must not reopen a connection.
                raise RequestFinished("the request has already been answered")
            if self._connection is None:
                self._connection = await self._engine.connect()
            yield self._connection

    async def close(self) -> None:
        """Close the connection once no field is using it; later uses are refused."""
        async with self._lock:
            self._closed = True
            if self._connection is not None:
                await self._connection.close()
                self._connection = None


class RequestFinished(RuntimeError):
    """A field tried to read after its request was answered."""


@dataclass
class Context:
    """The GraphQL context of one request."""

    request: Request
    settings: Settings
    db: RequestDatabase
    clock: Clock
    viewer: UserRow
    organization: OrganizationRow
    request_id: str = ""
    token_id: int = 0
    loaders: Loaders = field(init=False)
    # Time ranges resolved in this request, by organization and argument (resolvers.usage).
    resolved_ranges: dict[tuple[int, TimeRangeArgs], ResolvedRange] = field(default_factory=dict)
    # Filled in by the QueryCost extension: what ran and what it was estimated to cost.
    operation_names: list[str] = field(default_factory=list)
    query_cost: int = 0

    def record_operation(self, name: str | None, cost: int) -> None:
        if name:
            self.operation_names.append(name)
        self.query_cost += cost

    def __post_init__(self) -> None:
        from db.loaders import Loaders

        self.loaders = Loaders(self.db)
