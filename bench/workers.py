"""Throughput of ``creditlens serve --workers 1`` against ``--workers 2`` (issue 16).

    python bench/workers.py --dataset bench/out/sqlite-100k.json --duration 5

The read scenarios of ``bench/reads.py`` (a-all, b) against a real ``creditlens serve``
(with Redis for the shared rate limits, which are on: 10^9 a minute, so every request pays
the Redis round trip as in production), with wrk on the same machine. This machine has two
cores: wrk competes with the workers, so its CPU share (wrk CPU seconds / (wall seconds x
cores)) is printed beside each figure. Results go to bench/out/workers-*.json and the table
to stdout; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reads import OUT, ROOT, SCENARIOS, _lua, fetch, wrk

SERVE = [sys.executable, "-c", "from app.cli import main; main()", "serve"]
PORT = 8111
REDIS_URL = "redis://127.0.0.1:6379/14"


def serve(database_url: str, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CREDITLENS_DATABASE_URL": database_url,
        "CREDITLENS_REDIS_URL": REDIS_URL,
        "CREDITLENS_RATE_LIMIT_PER_MINUTE": "1000000000",
        "CREDITLENS_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*SERVE, "--port", str(PORT), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    for _ in range(300):
        with suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1).read()
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"server did not start; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=OUT / "sqlite-100k.json")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    dataset = json.loads(args.dataset.read_text())
    token = dataset["token"]
    url = f"http://127.0.0.1:{PORT}/graphql"
    rows = []
    print("| scenario | workers | req/s | p50 ms | p99 ms | wrk CPU share |")
    print("|---|---|---|---|---|---|")
    for workers in (1, 2):
        process = serve(dataset["url"], workers, OUT / "workers-server.log")
        try:
            for name in ("a-all", "b"):
                query, variables, _ = SCENARIOS[name]
                variables = {k: v.replace("{key}", dataset["key"]) for k, v in variables.items()}
                body = {"query": query, "variables": variables}
                assert not fetch(url, token, body).get("errors")
                fetch(url, token, body)  # warm the caches of at least one worker
                script = _lua("POST", token, json.dumps(body))
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.monotonic()
                result = wrk(url, script, connections=args.connections, duration=args.duration)
                wall = time.monotonic() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                share = cpu / (wall * (os.cpu_count() or 1))
                row = {"scenario": name, "workers": workers, **result, "wrk_cpu_share": share}
                rows.append(row)
                print(
                    f"| {name} | {workers} | {result['rps']:.0f} | {result['p50']:.2f} | "
                    f"{result['p99']:.2f} | {100 * share:.1f} % |",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=60)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"workers-{stamp}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
