#!/bin/sh
# The 10 million event run on both databases (about 1.5 hours on 2 cores), each step logged
# to bench/out/:
#  1. postgres-10m, then sqlite-10m: bulk insert + `creditlens rollups rebuild` (timed, peak
#     RSS), one at a time; each with the planted spike of bench/generate.py;
#  2. the read benchmark at 10M on both (GraphQL beside the plain route and the floor);
#  3. the insight fields (bench/insights.py) and the planted spike found and recomputed from
#     raw events (bench/planted_spike.py) on each;
#  4. the CSV export's peak memory on the PostgreSQL dataset (bench/export_memory.sh);
#  5. with --ingest, the same events as NDJSON through `creditlens ingest` under
#     /usr/bin/time -v (rate and the CLI's peak RSS; about an hour more).
# Pass LABEL=... to name the datasets (default 10m); the presets read "now", so a dataset
# older than a day misses the last day of each preset: reload with --fresh then.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LABEL=${LABEL:-10m}
for backend in postgres sqlite; do
	$PY bench/generate.py --size 10m --backend $backend --via bulk --label "$LABEL"
done
$PY bench/reads.py --sizes "$LABEL" --backends postgres,sqlite --duration 5 | tee bench/out/reads-10m.md
for backend in postgres sqlite; do
	$PY bench/insights.py --dataset "bench/out/$backend-$LABEL.json" --runs 30 |
		tee "bench/out/insights-$backend-$LABEL.md"
	$PY bench/planted_spike.py --dataset "bench/out/$backend-$LABEL.json" |
		tee "bench/out/planted-$backend-$LABEL.md"
done
bench/export_memory.sh "bench/out/postgres-$LABEL.json" | tee "bench/out/export-postgres-$LABEL.md"
if [ "${1:-}" = "--ingest" ]; then
	$PY bench/generate.py --size 10m --backend sqlite --via cli --label ingest10m
fi
