"""Instructions per request of a whole server process, HTTP included, under callgrind.

    python bench/instructions.py --dataset postgres-rc1m --servers graphql,plain,floor \\
        --scenarios a-all,c [--before /tmp/checkout] [--count 40]

Wall-clock figures on a shared 2-core machine move with everyone else's load; the number
of instructions a server executes per request does not. Each server (the same commands as
``bench/reads.py``: uvicorn with its protocol and event loop) is started under
``valgrind --tool=callgrind`` twice: once answering ``--warmup`` + ``--count`` requests and
once ``--warmup`` + 2 x ``--count``, sent one after another on one keep-alive connection
by this script; at exit callgrind writes the process's total. The difference divided by
``--count`` is the cost of one request: start-up, imports, warm-up and shutdown cancel
out. It counts everything the server process runs (uvicorn's parser, the app, SQLAlchemy,
the driver, logging, metrics; every thread), not PostgreSQL's own work, which is a
separate process and the same for every server.

Prints one markdown row per (scenario, server) and writes bench/out/instructions-*.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from reads import (  # noqa: E402
    FAST_PROTOCOL,
    FLOOR_PATHS,
    H11_PROTOCOL,
    OUT,
    SCENARIOS,
)

PORT = int(os.environ.get("BENCH_PORT_BASE", "8100")) + 10


def command(kind: str) -> list[str]:
    uvicorn = [str(ROOT / ".venv/bin/python"), "-m", "uvicorn"]
    fast = ["--loop", "uvloop", "--http", "httptools"]
    if kind == "graphql":
        return [*uvicorn, "app.asgi:app", "--loop", "uvloop", "--http", FAST_PROTOCOL]
    if kind == "before":
        return [*uvicorn, "app.asgi:app", "--loop", "asyncio", "--http", H11_PROTOCOL]
    return [*uvicorn, "--app-dir", "bench", f"{kind}_app:app", *fast]


def request_of(kind: str, scenario: str, key: str) -> tuple[str, str, bytes | None]:
    query, variables, plain_path = SCENARIOS[scenario]
    if kind in ("graphql", "before"):
        values = {k: v.replace("{key}", key) for k, v in variables.items()}
        return "POST", "/graphql", json.dumps({"query": query, "variables": values}).encode()
    path = FLOOR_PATHS[scenario] if kind == "floor" else plain_path
    return "GET", path.replace("{key}", key), None


def run_server(
    kind: str, root: Path, url: str, requests: int, scenario: str, info: dict[str, Any]
) -> int:
    """Total instructions of one server process that answered ``requests`` requests."""
    out = OUT / f"callgrind-{kind}-{os.getpid()}-{requests}.out"
    env = {
        **os.environ,
        "CREDITLENS_DATABASE_URL": url,
        "CREDITLENS_RATE_LIMIT_PER_MINUTE": "0",
        "PYTHONPATH": str(root),
    }
    log = (OUT / f"instructions-{kind}.log").open("ab")
    process = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            *command(kind),
            "--port",
            str(PORT),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                probe.close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start (see {log.name})") from None
                time.sleep(0.5)
        method, path, body = request_of(kind, scenario, info["key"])
        headers = {"Authorization": f"Bearer {info['token']}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        for _ in range(requests):
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200 or b'"errors"' in answer:
                raise RuntimeError(f"{kind} {scenario}: {response.status} {answer[:300]!r}")
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=300)
        log.close()
    text = out.read_text(errors="replace")
    out.unlink()
    totals = [int(n) for n in re.findall(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)]
    if not totals:
        raise RuntimeError(f"no totals in {out}")
    return max(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="postgres-1m", help="bench/out/<name>.json")
    parser.add_argument("--servers", default="graphql,plain,floor")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--before", type=Path, help="checkout whose GraphQL app is 'before'")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    info = json.loads((OUT / f"{args.dataset}.json").read_text())
    started = datetime.now(UTC)
    print("| scenario | server | instructions per request (millions) |\n|---|---|---|", flush=True)
    results = []
    for scenario in args.scenarios.split(","):
        for kind in args.servers.split(","):
            root = args.before if kind == "before" else ROOT
            if root is None:
                raise SystemExit("--before is needed for the 'before' server")
            low = run_server(kind, root, info["url"], args.warmup + args.count, scenario, info)
            high = run_server(kind, root, info["url"], args.warmup + 2 * args.count, scenario, info)
            per = (high - low) / args.count
            results.append({"scenario": scenario, "server": kind, "instructions": round(per)})
            print(f"| {scenario} | {kind} | {per / 1e6:.2f} |", flush=True)
    path = OUT / f"instructions-{started:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"dataset": args.dataset, "results": results}, indent=2))
    print(f"raw: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
