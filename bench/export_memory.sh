#!/bin/bash
# Peak memory of the CSV export (docs/export.md, "Measured"): one `creditlens serve`
# answering exports of growing size; VmHWM (peak RSS) read from /proc after each.
#  - EVENTS (default 1,000,000): EVENTS events over a year for 50 keys in Europe/Berlin,
#    ingested into a scratch SQLite file;
#  - DATASET.json (a description written by bench/generate.py, e.g. a 10M dataset): that
#    database as it is, its largest organization, ranges ending at the dataset's end (a
#    week, the whole 120 days, a year: hourly rows per key, endpoint and user).
# Usage: bench/export_memory.sh [EVENTS=1000000 | DATASET.json] [PORT=18300]
set -euo pipefail
EVENTS=${1:-1000000}
PORT=${2:-18300}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/.venv/bin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ $EVENTS == *.json ]]; then
  field() { "$BIN/python" -c 'import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$EVENTS" "$1"; }
  export CREDITLENS_DATABASE_URL=$(field url)
  TOKEN=$(field token)
  read -r WEEK WHOLE YEAR END < <("$BIN/python" - "$(field end)" <<'PY'
import sys
from datetime import datetime, timedelta
end = datetime.fromisoformat(sys.argv[1]).replace(minute=0) + timedelta(hours=1)
z = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
print(*(z(end - timedelta(days=d)) for d in (7, 121, 365)), z(end))
PY
)
  QUERIES=(
    "start=$WEEK&end=$END&groupBy=apiKey&granularity=HOUR"
    "start=$WHOLE&end=$END&groupBy=apiKey&granularity=HOUR"
    "start=$YEAR&end=$END&groupBy=apiKey&granularity=HOUR"
    "start=$YEAR&end=$END&groupBy=endpoint&granularity=HOUR"
    "start=$YEAR&end=$END&groupBy=user&granularity=HOUR"
    "start=$YEAR&end=$END&groupBy=user&granularity=DAY"
  )
else
export CREDITLENS_DATABASE_URL=sqlite+aiosqlite:///$WORK/export.db
"$BIN/python" - "$EVENTS" "$WORK/events.ndjson" <<'PY'
import json, random, sys
from datetime import UTC, datetime, timedelta
random.seed(7)
start, span, n = datetime(2025, 11, 30, tzinfo=UTC), 365 * 86400, int(sys.argv[1])
with open(sys.argv[2], "w") as out:
    for i in range(n):
        at = start + timedelta(seconds=span * i / n + random.random())
        key = random.randrange(50)
        out.write(json.dumps({
            "id": f"e{i}", "organization": "big",
            "api_key": {"id": f"key-{key:02d}", "name": f"Key {key:02d}"},
            "source": random.choice(["api", "crm_integration", "zapier"]),
            "endpoint": f"/v2/e{random.randrange(20)}", "status": random.choice([200] * 9 + [404]),
            "credits": random.randrange(5), "user": f"user-{random.randrange(30)}",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        }) + "\n")
PY
"$BIN/creditlens" migrate >/dev/null
"$BIN/creditlens" org create --slug big --name Big --timezone Europe/Berlin >/dev/null
"$BIN/creditlens" user create --org big --name Admin --role ADMIN >/dev/null
TOKEN=$("$BIN/creditlens" token create --user 1 --json | "$BIN/python" -c 'import json,sys;print(json.load(sys.stdin)["token"])')
"$BIN/creditlens" ingest "$WORK/events.ndjson" --quiet
QUERIES=(
    "start=2026-11-01T00:00:00Z&end=2026-11-08T00:00:00Z&groupBy=apiKey&granularity=HOUR"
    "start=2025-11-30T00:00:00Z&end=2026-01-01T00:00:00Z&groupBy=apiKey&granularity=HOUR"
    "start=2025-11-30T00:00:00Z&end=2026-11-30T00:00:00Z&groupBy=apiKey&granularity=HOUR"
    "start=2025-11-30T00:00:00Z&end=2026-11-30T00:00:00Z&groupBy=endpoint&granularity=HOUR"
    "start=2025-11-30T00:00:00Z&end=2026-11-30T00:00:00Z&groupBy=user&granularity=DAY"
)
fi
"$BIN/creditlens" serve --port "$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 60); do curl -s "localhost:$PORT/healthz" >/dev/null && break; sleep 0.5; done
kb() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$PID/status"; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); idle VmHWM $(kb VmHWM) kB"
for query in "${QUERIES[@]}"; do
  stats=$(curl -s -o "$WORK/out.csv" -w "%{http_code} %{size_download}B %{time_total}s" \
    -H "Authorization: Bearer $TOKEN" "localhost:$PORT/v1/exports/usage.csv?$query")
  echo "$stats rows=$(($(wc -l <"$WORK/out.csv") - 1)) VmHWM=$(kb VmHWM)kB load=$(cut -d' ' -f1 /proc/loadavg)  $query"
done
kill "$PID"
wait "$PID" 2>/dev/null || true
