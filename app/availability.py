"""Is the database there? Which failures are an outage (503), and the SQLite file check.

An outage is answered ``SERVICE_UNAVAILABLE`` with 503 and ``Retry-After`` on every
surface, never as a 500: the client did nothing wrong and may retry. A bug (a statement
the database refuses, say) stays a 500.

A SQLite file deleted under a running server is not an error to SQLite: the open
connections keep reading and writing the deleted file, so a write would be acknowledged
and then lost with the last handle. ``DatabaseFile.check`` notices (the path is gone, or
now names another file) so ``/readyz`` says 503 and ingestion refuses to acknowledge.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.errors import Unavailable

RETRY_AFTER_SECONDS = 5
UNREACHABLE = "The database is unavailable; retry shortly."

# Connection refused or lost, pool exhausted, file unreadable, locked past the busy
# timeout, schema missing: all conditions of the database, not of the request.
_OUTAGES = (OSError, OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def is_outage(error: BaseException) -> bool:
    """True when ``error`` says the database cannot serve now (rather than a bug)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, _OUTAGES)


def unavailable() -> Unavailable:
    return Unavailable(UNREACHABLE)


class DatabaseFile:
    """The SQLite file a server serves; every check passes for other databases."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        path = url.database or ""
        is_file = url.get_backend_name() == "sqlite" and path not in ("", ":memory:")
        self.path = path if is_file and not path.startswith("file:") else None
        self._identity: tuple[int, int] | None = None

    def check(self) -> None:
        """Raise ``Unavailable`` when the file once seen is gone or is another file now."""
        if self.path is None:
            return
        try:
            status = os.stat(self.path)
        except OSError as error:
            if self._identity is None:
                return  # never there: SQLite makes an empty (unmigrated) database of it
            raise Unavailable("The database file is missing; nothing can be stored.") from error
        identity = (status.st_dev, status.st_ino)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            # Pooled connections still hold the old file: restart to serve the new one.
            raise Unavailable("The database file was replaced; the server must be restarted.")
