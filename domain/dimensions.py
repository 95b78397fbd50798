"""What a report breaks usage down by."""

from __future__ import annotations

from enum import Enum, IntEnum


class Dimension(IntEnum):
    """A breakdown of usage. The numbers are the codes stored in ``usage_rollups.dimension``
    (and written into the ingestion SQL from here): never renumber one."""

    TOTAL = 0  # no breakdown: every call of the bucket and key
    ENDPOINT = 1
    SOURCE = 2
    USER = 3  # by users.id; calls without a user form their own row


class UsageDimension(Enum):
    """What a spike's drivers are grouped by (``SpikeDriver.dimension``): the report's
    breakdowns, API keys included (stored per key, not as a ``Dimension``)."""

    API_KEY = "API_KEY"
    ENDPOINT = "ENDPOINT"
    SOURCE = "SOURCE"
    USER = "USER"
