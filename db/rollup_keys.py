"""The two values of ``usage_rollups.api_key_id`` that are not a key's id."""

from __future__ import annotations

NO_KEY = 0  # calls made without an API key (the primary key needs no NULL)
# Rows summed over every key (keyless calls included), at every grain: an organization-wide
# read takes one row per bucket, value and outcome, however many keys the organization has
# (the quarter-hour ones since migration 0006, for range edges off the hour).
ALL_KEYS = -1
