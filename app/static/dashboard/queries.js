// The operations the dashboard runs. Open to members: HEADER. Admins of paid plans: the rest.

export const HEADER = `query DashboardHeader {
  viewer { name role }
  organization { name plan timezone }
}`;

export const POOL = `query DashboardPool {
  organization {
    creditPool {
      cycleStart cycleEnd allowance consumed remaining burnRatePerDay projectedExhaustionAt
    }
  }
}`;

export const KEYS = `query DashboardKeys($after: String) {
  organization {
    apiKeys(first: 100, after: $after, includeRevoked: true) {
      nodes { id name revokedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const ROW = "calls creditsConsumed percentOfTotal";

export const USAGE = `query DashboardUsage(
  $timeRange: TimeRangeInput!, $keyId: ID, $granularity: Granularity!
) {
  organization {
    usage(timeRange: $timeRange, keyId: $keyId) {
      range { start end timezone }
      calls
      creditsConsumed
      lastEventAt
      byEndpoint { endpoint ${ROW} }
      bySource { source ${ROW} }
      byUser { user { id name } ${ROW} }
      byApiKey { apiKey { id name } ${ROW} }
      byOutcome { outcome ${ROW} }
      series(granularity: $granularity) { start end calls creditsConsumed }
      previous { calls creditsConsumed }
      change { callsPercent creditsPercent }
    }
  }
}`;

// Spikes in their own request: a failure (or a refused cost) leaves the report standing.
// Hourly spikes over long ranges come without drivers, which would multiply the cost.
const SPIKE = "start end creditsConsumed expectedCredits excessCredits";
const DRIVERS = "drivers { dimension value apiKey { name } user { name } excessCredits shareOfExcess }";

function spikesQuery(name, fields) {
  return `query ${name}($timeRange: TimeRangeInput!, $keyId: ID, $granularity: Granularity!) {
  organization {
    usage(timeRange: $timeRange, keyId: $keyId) { spikes(granularity: $granularity) { ${fields} } }
  }
}`;
}

export const SPIKES = spikesQuery("DashboardSpikes", `${SPIKE} ${DRIVERS}`);
export const SPIKES_ONLY = spikesQuery("DashboardSpikesOnly", SPIKE);

export const ALERTS = `query DashboardAlerts {
  organization {
    alerts {
      id name window enabled state lastTriggeredAt
      thresholdPercentOfAllowance effectiveThresholdCredits
      apiKey { name }
      deliveries(first: 1) { status attempts responseStatus createdAt }
    }
  }
}`;
