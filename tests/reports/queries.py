"""The report documents the tests ask, and the helpers that ask them and make events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import answer, event, graphql

SERIES = """
query($range: TimeRangeInput!, $granularity: Granularity!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      range { start end timezone preset }
      calls creditsConsumed
      series(granularity: $granularity) { start end calls creditsConsumed }
    }
  }
}
"""

# Only the series, so a refused series is the one error of its response.
SERIES_ONLY = """
query($range: TimeRangeInput!, $granularity: Granularity!) {
  organization { usage(timeRange: $range) { series(granularity: $granularity) { calls } } }
}
"""

REPORT = """
query($range: TimeRangeInput!, $key: ID) {
  organization {
    usage(timeRange: $range, keyId: $key) {
      calls creditsConsumed
      byEndpoint { endpoint calls creditsConsumed percentOfTotal }
      bySource { source calls creditsConsumed percentOfTotal }
      byUser { user { id name } calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { id name } calls creditsConsumed percentOfTotal }
    }
  }
}
"""


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def ask(client, token, query, variables) -> dict[str, Any]:
    """The organization of the answer, read from the tail and from the rollups alike
    (``tests.factories.answer``)."""
    organization: dict[str, Any] = (await answer(client, token, query, variables))["organization"]
    return organization


async def error_of(client, token, query, variables) -> dict[str, Any]:
    body = (await graphql(client, token, query, variables)).json()
    # The panels are nullable: a refused or failed one is null, the organization answers.
    organization = (body.get("data") or {}).get("organization") or {}
    assert all(value is None for value in organization.values()), body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


def explicit(start: datetime, end: datetime, zone: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    if zone is not None:
        value["timezone"] = zone
    return value


def grid_events(slug: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Events on both sides of every 15-minute UTC instant: any misplaced edge shows."""
    events = []
    point, index = start, 0
    while point < end:
        events.append(event(slug, point, credits=index % 3))
        events.append(event(slug, point + timedelta(minutes=14, seconds=59), credits=1))
        point += timedelta(minutes=15)
        index += 1
    return events


def edge_events(slug: str, edges: list[datetime]) -> list[dict[str, Any]]:
    """Grid events for two hours around each edge and one event every five hours between:
    enough to catch a misplaced edge in a long range without a huge batch."""
    events = []
    for edge in edges:
        events.extend(grid_events(slug, edge - timedelta(hours=2), edge + timedelta(hours=2)))
    point = edges[0]
    while point < edges[-1]:
        events.append(event(slug, point + timedelta(minutes=7), credits=2))
        point += timedelta(hours=5)
    return events
