"""Bring a database to the newest migration, and tell whether it is there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (blocking; call outside an event loop)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at, None when it was never migrated."""
    return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def describe(url: str) -> str:
    """The database as a person names it: a SQLite file's path, else the URL sans password."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The absolute path of a SQLite database file; None for other databases and memory."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


@dataclass(frozen=True, slots=True)
class NotReady:
    """Why a database cannot be used yet; ``reachable`` tells whether migrating would fix it."""

    reason: str
    reachable: bool


def unreachable_reason(error: BaseException) -> str:
    """One line about a failed connection, from the driver's own message."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


async def not_ready(engine: AsyncEngine, url: str) -> NotReady | None:
    """Why commands cannot use this database yet (missing, unreachable, not migrated), or None.

    A missing SQLite file is reported without connecting: connecting would create it empty.
    """
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return NotReady("does not exist", reachable=True)
    try:
        async with engine.connect() as conn:
            current = await current_revision(conn)
    except (SQLAlchemyError, OSError) as error:
        return NotReady(f"cannot be opened: {unreachable_reason(error)}", reachable=False)
    head = head_revision()
    if current is None:
        return NotReady("is not migrated", reachable=True)
    if current != head:
        return NotReady(f"is at migration {current}, not the newest ({head})", reachable=True)
    return None
