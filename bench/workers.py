"""Throughput of ``creditlens serve --workers 1`` against ``--workers 2`` (issue 16).

    python bench/workers.py --dataset bench/out/sqlite-100k.json --duration 5 --rounds 2

The read scenarios of ``bench/reads.py`` against a real ``creditlens serve`` (Redis-shared
rate limits on, at 10^9 a minute, so every request pays the Redis round trip as in
production), with wrk on the same machine, pinned to CPU 1 (``reads.wrk``). Three servers
take turns, ``--rounds`` times, so all see the same machine:

- ``1``: ``creditlens serve --workers 1``;
- ``2``: ``creditlens serve --workers 2`` (uvicorn's supervisor: both workers accept on one
  shared listening socket);
- ``2 reuseport``: an experiment, two uvicorn processes with one SO_REUSEPORT socket each
  on the same port, so the kernel spreads the connections over the workers.

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

# One worker of the experiment "each worker its own listening socket": SO_REUSEPORT lets the
# kernel spread new connections over the sockets, where uvicorn's workers share one socket
# and whichever worker wakes first accepts a whole burst of connections.
REUSEPORT_WORKER = """
import socket, sys, uvicorn
from app.http_protocol import NAME
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
config = uvicorn.Config("app.asgi:app", log_level="warning", access_log=False, http=NAME)
uvicorn.Server(config).run(sockets=[sock])
"""


@contextmanager
def reuseport_workers(database_url: str, workers: int) -> Iterator[list[int]]:
    """``workers`` uvicorn processes on PORT, one SO_REUSEPORT socket each; their pids."""
    with tempfile.TemporaryDirectory() as metrics:
        env = {
            **os.environ,
            "CREDITLENS_DATABASE_URL": database_url,
            "CREDITLENS_REDIS_URL": REDIS_URL,
            "CREDITLENS_RATE_LIMIT_PER_MINUTE": str(10**9),
            "CREDITLENS_LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": metrics,  # as under `serve --workers N`
        }
        with (OUT / "workers-server.log").open("ab") as log:
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", REUSEPORT_WORKER, str(PORT)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                )
                for _ in range(workers)
            ]
        try:
            time.sleep(1)
            for _ in range(300):
                with suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1).read()
                    break
                time.sleep(0.1)
            time.sleep(2)  # every worker has started (each answers /healthz on its own)
            yield [process.pid for process in processes]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)


def children(pid: int) -> list[int]:
    """The worker processes of a ``serve --workers N`` supervisor (itself for N = 1)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
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
def server(database_url: str, label: str) -> Iterator[list[int]]:
    """The server of one row, and the pids of the processes that answer requests."""
    if label.endswith("reuseport"):
        with reuseport_workers(database_url, int(label.split()[0])) as pids:
            yield pids
        return
    workers = int(label)
    with live_server(
        database_url,
        OUT / "workers-server.log",
        port=PORT,
        serve_args=("--workers", str(workers)),
        redis_url=REDIS_URL,
        rate_limit_per_minute=10**9,
        log_level="WARNING",
    ) as running:
        # uvicorn's supervisor starts the workers (and multiprocessing's resource
        # tracker, which answers nothing and shows 0.00).
        yield children(running.pid) if workers > 1 else [running.pid]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=OUT / "sqlite-100k.json")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenarios", default="a-all,b")
    args = parser.parse_args()
    dataset = json.loads(args.dataset.read_text())
    token = dataset["token"]
    url = f"http://127.0.0.1:{PORT}/graphql"
    rows = []
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()}", file=sys.stderr)
    print(
        "| round | scenario | workers | req/s | p50 ms | p99 ms | ms CPU/req | workers CPU "
        "(cores each) | wrk CPU | others (cores) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for round_number in range(1, args.rounds + 1):
        for label in ("1", "2", "2 reuseport"):
            with server(dataset["url"], label) as pids:
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
