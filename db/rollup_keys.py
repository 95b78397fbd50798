"""The two values of ``usage_rollups.api_key_id`` that are not a key's id."""

from __future__ import annotations

NO_KEY = 0  # calls made without an API key (the primary key needs no NULL)
# Hour and day rows summed over every key (keyless calls included): an organization-wide
# read takes one row per bucket and value, however many keys the organization has. The
# 15-minute grain has none: it only fills range edges.
ALL_KEYS = -1
