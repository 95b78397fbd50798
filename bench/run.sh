#!/bin/sh
# The quick benchmark sizes (make bench): load or reuse 100k and 1M events in SQLite and
# PostgreSQL, then the read benchmark (GraphQL beside the plain route) on each.
# Datasets live in bench/out/ (gitignored) and are reused; pass --fresh to reload.
set -eu
cd "$(dirname "$0")/.."
PY=.venv/bin/python
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
for backend in sqlite postgres; do
	$PY bench/generate.py --size 100k --backend "$backend" "$@"
	# 1M through the ingestion path takes minutes; bulk + rollups rebuild gives the same
	# database (DESIGN.md: the rebuild must give identical answers).
	$PY bench/generate.py --size 1m --backend "$backend" --via bulk "$@"
done
$PY bench/reads.py --sizes 100k,1m --backends sqlite,postgres | tee bench/out/reads-quick.md
