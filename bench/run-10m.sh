#!/bin/sh
# The 10 million event run (about an hour on 2 cores):
#  1. sqlite-10m: bulk insert + `creditlens rollups rebuild` (timed, peak RSS), the dataset
#     the reads use;
#  2. ingest10m: the same events as NDJSON through `creditlens ingest` under
#     /usr/bin/time -v (rate and the CLI's peak RSS; --skip-ingest to leave it out);
#  3. the read benchmark at 100k, 1M and 10M on SQLite, side by side with the plain route.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY bench/generate.py --size 10m --backend sqlite --via bulk
if [ "${1:-}" != "--skip-ingest" ]; then
	$PY bench/generate.py --size 10m --backend sqlite --via cli --label ingest10m
fi
$PY bench/generate.py --size 100k --backend sqlite
$PY bench/generate.py --size 1m --backend sqlite --via bulk
$PY bench/reads.py --sizes 100k,1m,10m --backends sqlite --duration 10 | tee bench/out/reads-10m.md
