"""What a call achieved, derived from its HTTP status (shared/DESIGN.md "Domain").

Credits spent on anything but ``SUCCESS`` are what an admin optimises away.
"""

from __future__ import annotations

from enum import Enum


class CallOutcome(Enum):
    SUCCESS = "SUCCESS"  # 1xx-3xx
    NO_RESULT = "NO_RESULT"  # 404, or an event sent with "outcome": "no_result"
    RATE_LIMITED = "RATE_LIMITED"  # 429
    CLIENT_ERROR = "CLIENT_ERROR"  # any other 4xx
    SERVER_ERROR = "SERVER_ERROR"  # 5xx


# The code of each outcome in ``usage_events.outcome`` and ``usage_rollups.outcome``.
# Stored data depends on these numbers: never renumber one, only add new ones. Migrations
# spell them as literals (a migration must keep meaning what it meant when it was written).
OUTCOME_CODES: dict[CallOutcome, int] = {
    CallOutcome.SUCCESS: 1,
    CallOutcome.NO_RESULT: 2,
    CallOutcome.RATE_LIMITED: 3,
    CallOutcome.CLIENT_ERROR: 4,
    CallOutcome.SERVER_ERROR: 5,
}
OUTCOME_OF_CODE: dict[int, CallOutcome] = {code: outcome for outcome, code in OUTCOME_CODES.items()}

# The one value of an event's optional ``outcome`` field: a call that answered (e.g. 200)
# but found nothing.
NO_RESULT_FLAG = "no_result"


def outcome_of(status: int, *, no_result: bool = False) -> CallOutcome:
    """The outcome of a call that answered ``status``; ``no_result`` marks an answered call
    that found nothing (it only changes a success: an error stays an error)."""
    if status == 404:
        return CallOutcome.NO_RESULT
    if status == 429:
        return CallOutcome.RATE_LIMITED
    if 400 <= status < 500:
        return CallOutcome.CLIENT_ERROR
    if status >= 500:
        return CallOutcome.SERVER_ERROR
    return CallOutcome.NO_RESULT if no_result else CallOutcome.SUCCESS
