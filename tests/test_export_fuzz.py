"""Fuzzing the export: hypothesis draws query strings (valid values, near misses, garbage,
unknown and repeated parameters) for an admin, a member, a free-plan admin and an admin of
organization B. No answer is a 500, every refusal is coded JSON naming a parameter when it
is bad input, every CSV has its header, and nothing of organization B reaches the others.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.export_csv import PARAMETERS
from app.main import create_app
from app.settings import Settings
from tests.test_fuzz import MARKER, ROLES, _start, _stop

MAX_EXAMPLES = 120

VALUES = {
    "preset": ["LAST_7_DAYS", "today", "THIS_BILLING_CYCLE", "LAST_YEAR"],
    "start": ["2026-06-10T00:00:00Z", "2026-06-10T00:00:00", "0001-01-01T00:00:00+05:00"],
    "end": ["2026-06-16T00:00:00+05:45", "9999-12-31T23:59:59Z", "2026-06-01"],
    "timezone": ["Asia/Kathmandu", "Europe/Berlin", "Mars/Olympus", "utc"],
    "keyId": ["key-alpha-0", "key-bravo-0", "key-nobody"],
    "outcomes": ["SUCCESS", "NO_RESULT,CLIENT_ERROR", "success", "NONE", ","],
    "groupBy": ["endpoint", "source", "user", "apiKey", "outcome", "API_KEY"],
    "granularity": ["HOUR", "DAY", "WEEK", "MONTH", "minute"],
}
names = st.sampled_from([*PARAMETERS, "groupby", "limit"])
values = st.one_of(
    st.sampled_from([value for choices in VALUES.values() for value in choices]),
    st.text(max_size=12),
)
query_strings = st.lists(st.tuples(names, values), max_size=6)


def test_generated_exports_never_fail_or_leak(clean_database):
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    application = create_app(
        Settings(database_url=clean_database, rate_limit_per_minute=0), clock=lambda: now
    )
    statuses: set[int] = set()
    with asyncio.Runner() as runner:
        state = runner.run(_start(application, now))
        try:

            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(params=query_strings, role=st.sampled_from(ROLES))
            def check(params, role):
                response = runner.run(_export(state, role, params))
                statuses.add(response.status_code)
                assert response.status_code in {200, 400, 401, 403, 404}, (params, response.text)
                if response.status_code == 200:
                    rows = list(csv.reader(io.StringIO(response.text, newline="")))
                    assert rows[0][-3:] == ["calls", "credits_consumed", "percent_of_total"]
                else:
                    body = response.json()
                    assert body["code"], body
                    if body["code"] == "BAD_USER_INPUT":
                        assert body["field"], body
                # What the caller sent may be echoed back ("No API key with id ..."): only
                # what the server adds counts.
                text = response.text.lower()
                for _, value in params:
                    if value.strip():
                        text = text.replace(value.lower(), "")
                if role == "foreign_admin":
                    assert "alpha" not in text, (params, response.text)
                else:
                    assert MARKER not in text, (params, response.text)

            check()
        finally:
            runner.run(_stop(state))
    assert {200, 400, 403} <= statuses


async def _export(state, role, params):
    return await state["client"].get(
        "/v1/exports/usage.csv",
        params=params,
        headers={"Authorization": f"Bearer {state['tokens'][role]}"},
    )
