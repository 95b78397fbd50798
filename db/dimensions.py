"""The report dimensions a rollup row can hold, stored as small integers."""

from __future__ import annotations

from enum import IntEnum


class Dimension(IntEnum):
    """What ``usage_rollups.value`` means for a row."""

    TOTAL = 0  # value is "": the row counts every call of its bucket and key
    ENDPOINT = 1
    SOURCE = 2
    USER = 3  # value is the users.id as text, "" for calls without a user


NO_KEY = 0  # usage_rollups.api_key_id of calls made without an API key
# usage_rollups.api_key_id of hour and day rows summed over every key (keyless calls
# included): an organization-wide read takes one row per bucket and value, however many
# keys the organization has. The 15-minute grain has none: it only fills range edges.
ALL_KEYS = -1
