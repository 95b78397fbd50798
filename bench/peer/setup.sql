-- The peer's tables (bench/reads.py --peer): daily rollups in each organization's own
-- zone, as a team would build them for PostGraphile, from the same raw events creditlens
-- holds. Rebuilt from usage_events on every run, so they hold exactly what creditlens holds.
DROP SCHEMA IF EXISTS peer CASCADE;
CREATE SCHEMA peer;

-- One row per organization, key, endpoint and local day (calls without a key: key 0).
CREATE TABLE peer.daily_usage (
  organization_id bigint NOT NULL,
  api_key_id bigint NOT NULL,
  endpoint text NOT NULL,
  day date NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  PRIMARY KEY (organization_id, api_key_id, day, endpoint)
);
INSERT INTO peer.daily_usage
SELECT e.organization_id, coalesce(e.api_key_id, 0), e.endpoint,
       (e.occurred_at AT TIME ZONE o.timezone)::date, count(*), sum(e.credits)
FROM usage_events e JOIN organizations o ON o.id = e.organization_id
GROUP BY 1, 2, 3, 4;

-- The same summed over keys: the all-keys table (the peer's best case for a-all).
CREATE TABLE peer.daily_totals (
  organization_id bigint NOT NULL,
  endpoint text NOT NULL,
  day date NOT NULL,
  calls bigint NOT NULL,
  credits bigint NOT NULL,
  PRIMARY KEY (organization_id, day, endpoint)
);
INSERT INTO peer.daily_totals
SELECT organization_id, endpoint, day, sum(calls), sum(credits)
FROM peer.daily_usage GROUP BY 1, 2, 3;

-- Covering indexes: every read is an index-only range scan.
CREATE INDEX ON peer.daily_usage (organization_id, api_key_id, day) INCLUDE (endpoint, calls, credits);
CREATE INDEX ON peer.daily_totals (organization_id, day) INCLUDE (endpoint, calls, credits);

-- A range of days is a function argument (PostGraphile's conditions are equalities);
-- both are plain SQL the planner inlines into the aggregate PostGraphile builds.
CREATE FUNCTION peer.key_usage_between(org bigint, key bigint, from_day date, to_day date)
RETURNS SETOF peer.daily_usage LANGUAGE sql STABLE AS $$
  SELECT * FROM peer.daily_usage
  WHERE organization_id = org AND api_key_id = key AND day >= from_day AND day < to_day
$$;
CREATE FUNCTION peer.totals_between(org bigint, from_day date, to_day date)
RETURNS SETOF peer.daily_totals LANGUAGE sql STABLE AS $$
  SELECT * FROM peer.daily_totals
  WHERE organization_id = org AND day >= from_day AND day < to_day
$$;

-- Then VACUUM (ANALYZE) both tables, as a statement of its own (bench/reads.py), so that
-- their reads are index-only scans (the visibility map) with fresh statistics.
