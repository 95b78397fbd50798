"""Throughput of ``creditlens serve --workers 1`` against ``--workers 2`` (issue 16).

    python bench/workers.py --dataset bench/out/sqlite-100k.json --duration 5 --rounds 2

The read scenarios of ``bench/reads.py`` against a real ``creditlens serve`` (Redis-shared
rate limits on, at 10^9 a minute, so every request pays the Redis round trip as in
production), with wrk on the same machine, pinned to CPU 1 (``reads.wrk``). Three servers
take turns, ``--rounds`` times, so all see the same machine:

- ``1``: ``creditlens serve --workers 1``;
- ``2 uvicorn``: two workers under uvicorn's own supervisor (``uvicorn.run(workers=2)``, as
  ``serve --workers 2`` ran before app/supervisor.py): both workers accept on one shared
  listening socket;
- ``2``: ``creditlens serve --workers 2`` (app/supervisor.py): one SO_REUSEPORT socket per
  worker on the same port, so the kernel spreads the connections over the workers.

This machine has two cores, shared with other jobs: wrk and the workers compete with each
other and with everything else. So each row also says where the CPU went during the run:

- ``wrk CPU``: wrk's own CPU seconds / wall seconds (1.0 = one full core);
- ``workers CPU``: each worker process's CPU seconds / wall seconds (from /proc);
- ``ms CPU/req``: all the workers' CPU per request answered (robust to load: if it stays
  flat while req/s does not grow, the workers were short of CPU, not of parallelism);
- ``others``: the CPU the rest of the machine used meanwhile (from /proc/stat, in cores);
- the 1-minute load average before the run.

Results go to bench/out/workers-*.json and the table to stdout; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from reads import OUT, SCENARIOS, _lua, cpu_seconds, fetch, wrk  # noqa: E402

from tests.live_server import live_server  # noqa: E402

PORT = 18501
REDIS_URL = "redis://127.0.0.1:6379/14"
TICK = os.sysconf("SC_CLK_TCK")

# The baseline: uvicorn's supervisor, whose workers share the one socket it binds.
UVICORN_SUPERVISOR = """
import sys, uvicorn
from app.http_protocol import protocol_name
uvicorn.run("app.asgi:app", host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
            log_level="warning", access_log=False, http=protocol_name(), loop="auto")
"""


@contextmanager
def uvicorn_supervisor(
    database_url: str, workers: int, port: int, redis_url: str
) -> Iterator[list[int]]:
    """uvicorn's supervisor with ``workers`` workers on ``port``; the workers' pids."""
    with tempfile.TemporaryDirectory() as metrics:
        env = {
            **os.environ,
            "CREDITLENS_DATABASE_URL": database_url,
            "CREDITLENS_REDIS_URL": redis_url,
            "CREDITLENS_RATE_LIMIT_PER_MINUTE": str(10**9),
            "CREDITLENS_LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": metrics,  # as under `serve --workers N`
        }
        with (OUT / "workers-server.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", UVICORN_SUPERVISOR, str(port), str(workers)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        try:
            for _ in range(600):
                with suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                time.sleep(0.1)
            time.sleep(2)  # every worker has started (each answers /healthz on its own)
            yield children(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The worker processes of a supervisor (not multiprocessing's resource tracker, which
    answers nothing)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command:
                found.append(int(child))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def measure(
    url: str, pids: list[int], script: str, connections: int, duration: int
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    workers_before = [cpu_seconds(pid) for pid in pids]
    busy_before = machine_busy_seconds()
    rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = wrk(url, script, connections=connections, duration=duration)
    wall = time.monotonic() - started
    rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy_seconds() - busy_before
    workers = [cpu_seconds(pid) - before for pid, before in zip(pids, workers_before, strict=True)]
    wrk_cpu = (rusage_after.ru_utime - rusage_before.ru_utime) + (
        rusage_after.ru_stime - rusage_before.ru_stime
    )
    return {
        **result,
        "load": load,
        "wall": wall,
        "wrk_cpu_share": wrk_cpu / wall,
        "worker_cpu_shares": [cpu / wall for cpu in workers],
        "server_cpu_ms_per_request": 1000 * sum(workers) / max(result["requests"], 1),
        "others_cores": max(0.0, (busy - wrk_cpu - sum(workers)) / wall),
    }


@contextmanager
def server(database_url: str, label: str, port: int, redis_url: str) -> Iterator[list[int]]:
    """The server of one row, and the pids of the processes that answer requests."""
    workers = int(label.split()[0])
    if label.endswith("uvicorn"):
        with uvicorn_supervisor(database_url, workers, port, redis_url) as pids:
            yield pids
        return
    with live_server(
        database_url,
        OUT / "workers-server.log",
        port=port,
        serve_args=("--workers", str(workers)),
        redis_url=redis_url,
        rate_limit_per_minute=10**9,
        log_level="WARNING",
    ) as running:
        if workers > 1:
            time.sleep(2)  # every worker has started (each answers /healthz on its own)
        yield children(running.pid) if workers > 1 else [running.pid]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=OUT / "sqlite-100k.json")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", default="a-all,b")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    dataset = json.loads(args.dataset.read_text())
    token = dataset["token"]
    url = f"http://127.0.0.1:{args.port}/graphql"
    rows = []
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}", file=sys.stderr)
    print(
        "| round | scenario | workers | req/s | p50 ms | p99 ms | ms CPU/req | workers CPU "
        "(cores each) | wrk CPU | others (cores) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for round_number in range(1, args.rounds + 1):
        for label in ("1", "2 uvicorn", "2"):
            with server(dataset["url"], label, args.port, args.redis_url) as pids:
                for name in args.scenarios.split(","):
                    query, variables, _ = SCENARIOS[name]
                    key = dataset["key"]
                    variables = {k: v.replace("{key}", key) for k, v in variables.items()}
                    body = {"query": query, "variables": variables}
                    assert not fetch(url, token, body).get("errors")
                    for _ in range(4):
                        fetch(url, token, body)  # warm the workers' caches
                    script = _lua("POST", token, json.dumps(body))
                    row = measure(url, pids, script, args.connections, args.duration)
                    row.update(scenario=name, workers=label, round=round_number)
                    rows.append(row)
                    shares = " + ".join(f"{share:.2f}" for share in row["worker_cpu_shares"])
                    print(
                        f"| {round_number} | {name} | {label} | {row['rps']:.0f} | "
                        f"{row['p50']:.1f} | {row['p99']:.1f} | "
                        f"{row['server_cpu_ms_per_request']:.2f} | {shares} | "
                        f"{row['wrk_cpu_share']:.3f} | {row['others_cores']:.2f} | "
                        f"{row['load']:.1f} |",
                        flush=True,
                    )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (OUT / f"workers-{stamp}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
