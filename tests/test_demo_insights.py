"""The demo data shows what the insights are for: one spike day driven by one key and one
endpoint, and one key that burns most of its credits on calls that found nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.demo import load_demo
from tests.factories import PEPPER, graphql

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)

QUERY = """
{
  organization {
    usage(timeRange: {preset: LAST_30_DAYS}) {
      spikes(granularity: DAY) {
        start excessCredits
        drivers { dimension value shareOfExcess }
      }
      byApiKey { apiKey { id } creditsConsumed }
    }
    dedupe: usage(timeRange: {preset: LAST_30_DAYS}, keyId: "key_dedupe") {
      creditsConsumed
      byOutcome { outcome creditsConsumed }
    }
  }
}
"""


async def test_the_demo_has_one_spike_day_driven_by_one_key_and_endpoint(client, engine, clock):
    clock.now = NOW
    tokens = await load_demo(engine, now=NOW, pepper=PEPPER)

    body = (await graphql(client, tokens.admin, QUERY)).json()

    assert "errors" not in body, body
    usage = body["data"]["organization"]["usage"]
    # The spike day is the one that matters; the demo's thin weekends (a few dozen calls,
    # some costing 10 credits) may add a blip of a few dozen credits (docs/spikes.md).
    spike, *blips = sorted(usage["spikes"], key=lambda found: -found["excessCredits"])
    assert all(blip["excessCredits"] < spike["excessCredits"] / 10 for blip in blips)
    spike_day = (NOW - timedelta(days=12)).date()
    start = datetime.fromisoformat(spike["start"].replace("Z", "+00:00"))
    assert start.astimezone(UTC).date() in (spike_day, spike_day - timedelta(days=1))
    top = {}
    for driver in spike["drivers"]:
        top.setdefault(driver["dimension"], driver)
    assert top["API_KEY"]["value"] == "key_enrichment"
    assert top["ENDPOINT"]["value"] == "prospecting/contact/enrich"
    assert top["API_KEY"]["shareOfExcess"] > 0.7
    dedupe = body["data"]["organization"]["dedupe"]
    wasted = {row["outcome"]: row["creditsConsumed"] for row in dedupe["byOutcome"]}
    assert dedupe["byOutcome"][0]["outcome"] == "NO_RESULT"  # its largest row
    assert wasted["NO_RESULT"] > dedupe["creditsConsumed"] / 2
