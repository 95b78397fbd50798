"""SQLite: a one-row read on the event loop's own thread, without aiosqlite's.

Every request runs the token statement (an index probe of a few microseconds inside
SQLite). Through aiosqlite it crossed to the connection's thread and back, inside
SQLAlchemy's execution and a read transaction (BEGIN, the statement, ROLLBACK: three
crossings), on a connection checked out of the pool: about half of the CPU of a request
whose answer is reused (bench/PROPOSALS.md, R29). ``LoopReader`` runs it on a plain
``sqlite3`` connection of its own, in the calling thread, in autocommit: each statement is
its own read snapshot of the latest commit (WAL), so a token revoked or a version moved by
any process is seen by the next statement, as before.

Blocking the loop for a probe is cheaper than handing it to a thread. What could block
for longer is refused instead of waited for: the connection has no busy timeout, and any
``sqlite3.Error`` (a file that is gone or being recovered, a lock) makes the caller run
the same statement the usual way (``LoopConnection``), which waits or fails as it always
did. Only for files: an in-memory database is private to its connection.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Row = dict[str, Any]


class LoopReader:
    """One read-only ``sqlite3`` connection to the engine's file, opened on first use."""

    def __init__(self, path: Path) -> None:
        self._uri = f"{path.resolve().as_uri()}?mode=rw"
        self._connection: sqlite3.Connection | None = None
        # The sqlite3 module does not guard a connection used from two threads at once
        # (tests may run an app's requests on more than one); uncontended, it costs ~0.1 µs.
        self._lock = threading.Lock()

    def fetchrow(self, query: str, parameters: Sequence[object]) -> Row | None:
        """The first row of ``query`` (positional ``?`` parameters) by column label, or
        None; raises ``sqlite3.Error`` where the usual path would have to wait or fail."""
        with self._lock:
            try:
                connection = self._open()
                cursor = connection.execute(query, tuple(parameters))
                # Read to the end: the statement is finished and its snapshot let go.
                rows = cursor.fetchall()
                names = [column[0] for column in cursor.description]
            except sqlite3.Error:
                self._close()  # opened again next time: the file may have been replaced
                raise
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            # mode=rw: never create a missing file; no busy timeout: never wait on the loop.
            connection = sqlite3.connect(
                self._uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA query_only=ON")
            self._connection = connection
        return self._connection

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_READERS: weakref.WeakKeyDictionary[Any, LoopReader | None] = weakref.WeakKeyDictionary()


def loop_reader(engine: AsyncEngine) -> LoopReader | None:
    """The engine's reader: one per engine (so per worker), closed with it; None unless the
    engine is SQLite on a file."""
    sync = engine.sync_engine
    if sync in _READERS:
        return _READERS[sync]
    reader = None
    database = engine.url.database
    on_file = database and database != ":memory:" and not database.startswith("file:")
    if engine.dialect.name == "sqlite" and on_file and not engine.url.query:
        reader = LoopReader(Path(str(database)))
        event.listen(sync, "engine_disposed", lambda _conn: reader.close())
    _READERS[sync] = reader
    return reader


class LoopConnection:
    """What a request's one-row statement runs on with SQLite: the loop's reader, else
    (``sqlite3.Error``) the request's own connection, through SQLAlchemy as before. Either
    way the row's values are SQLite's own (text for instants), by column label."""

    def __init__(
        self,
        reader: LoopReader,
        fallback: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    ) -> None:
        self._reader = reader
        self._fallback = fallback

    async def fetchrow(self, query: str, *args: object) -> Row | None:
        try:
            return self._reader.fetchrow(query, args)
        except sqlite3.Error:
            pass
        async with self._fallback() as conn:
            row = (await conn.exec_driver_sql(query, args)).first()
        return None if row is None else dict(row._mapping)
