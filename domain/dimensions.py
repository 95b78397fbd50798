"""What a report breaks usage down by."""

from __future__ import annotations

from enum import IntEnum


class Dimension(IntEnum):
    """A breakdown of usage. The numbers are the codes stored in ``usage_rollups.dimension``
    (and written into the ingestion SQL from here): never renumber one."""

    TOTAL = 0  # no breakdown: every call of the bucket and key
    ENDPOINT = 1
    SOURCE = 2
    USER = 3  # by users.id; calls without a user form their own row
