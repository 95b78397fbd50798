"""Alembic migrations, run with ``creditlens migrate`` (see ``db.migrate``)."""
