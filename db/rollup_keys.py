"""The values of ``usage_rollups.api_key_id`` and ``usage_rollups.outcome`` that are not a
key's id or an outcome's code."""

from __future__ import annotations

from domain.outcomes import OUTCOME_CODES, CallOutcome

NO_KEY = 0  # calls made without an API key (the primary key needs no NULL)
# Rows summed over every key (keyless calls included), at every grain: an organization-wide
# read takes one row per bucket, value and outcome, however many keys the organization has
# (the quarter-hour ones since migration 0006, for range edges off the hour).
ALL_KEYS = -1
# Rows summed over every outcome (migration 0007): a read without an outcome filter, which
# is nearly every read, takes one row per (bucket, value) instead of one per outcome present
# in it (2.6 on average for a day of one endpoint of the benchmark's largest organization).
ALL_OUTCOMES = 0
# The outcome that has no rows of its own: its sums are the all-outcomes row less the rows
# of the other outcomes. Most calls succeed, so the cell of almost every other outcome row
# also holds successes: storing them as well would add a row per cell, as the all-outcomes
# rows would without this rule (bench/PROPOSALS.md, P-D).
IMPLIED_OUTCOME = OUTCOME_CODES[CallOutcome.SUCCESS]
