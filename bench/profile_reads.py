"""Where a read request's time goes, without HTTP sockets or wrk: the ASGI app called in-process.

    python bench/profile_reads.py --dataset postgres-1m --app graphql --scenario a-all --count 500
    python bench/profile_reads.py ... --cprofile          # attribution by layer (tottime)
    PROFILE_STATS_FILE=/tmp/g.stats python bench/profile_reads.py ... --cprofile
                                                       # and the pstats file, to compare apps
    python bench/profile_reads.py ... --crossings         # calls handed to aiosqlite's thread
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        python bench/profile_reads.py ... --count 200       # instructions (load-independent)

The app under test (``graphql``: ``app.main.create_app``; ``plain``: ``bench/plain_app.py``;
``floor``: ``bench/floor_app.py``) gets its lifespan started, then ``--count`` requests one
after another, each a real ASGI ``http`` scope with the bench token, each answer checked
(status 200, no GraphQL errors). Printed: process CPU time per request (all threads, so the
aiosqlite worker is included; PostgreSQL's server process is not), statements sent to the
database per request, and with ``--cprofile`` the time by layer. ``--warmup`` requests run
first and are not counted. The HTTP protocol (uvicorn's parser, the socket) is not in these
figures: ``bench/reads.py`` measures the whole path with wrk.

``--instructions`` runs the same thing twice under callgrind (``--count`` and
``--count * 2``) and prints instructions per request from the difference, so start-up and
imports cancel out.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import json
import os
import pstats
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from reads import FLOOR_PATHS, SCENARIOS  # noqa: E402

# Attribution of profiled functions by where they are defined (first match wins).
LAYERS = [
    ("sqlalchemy", "SQLAlchemy (statement building, compile cache, execute, rows)"),
    ("asyncpg", "asyncpg driver"),
    ("aiosqlite", "aiosqlite driver"),
    ("sqlite3", "sqlite3 module"),
    ("strawberry", "strawberry"),
    ("graphql/", "graphql-core"),
    ("starlette", "Starlette"),
    ("prometheus_client", "metrics (prometheus_client)"),
    ("/logging/", "logging (stdlib)"),
    ("app/logging.py", "logging (our formatter)"),
    ("app/observer.py", "request observer"),
    ("app/metrics.py", "metrics (ours)"),
    ("/json/", "json (stdlib)"),
    ("orjson", "orjson"),
    ("app/", "app/ (routes, auth, HTTP rules)"),
    ("graphql_schema/", "graphql_schema/ (types, limits, permissions)"),
    ("resolvers/", "resolvers/"),
    ("db/queries/tokens.py", "db/queries/tokens.py"),
    ("db/", "db/ (queries, loaders, session)"),
    ("domain/", "domain/"),
    ("bench/", "bench app code"),
    ("asyncio", "asyncio"),
    ("uuid", "uuid"),
    ("hmac", "hmac/hashlib"),
    ("hashlib", "hmac/hashlib"),
]


def layer_of(filename: str, function: str) -> str:
    name = filename.replace("\\", "/")
    if name == "~":
        # C functions: attribute by their name
        for needle, label in LAYERS:
            if needle.strip("/") in function:
                return label
        return "builtins (C)"
    for needle, label in LAYERS:
        if needle in name:
            return label
    return "other: " + (Path(name).parent.name or name)


def load_app(kind: str, url: str, now: datetime | None = None) -> Any:
    """The app; with ``now``, its clock pinned there (the GraphQL app's clock, and the
    plain route's, which reads ``domain.clock.system_clock``)."""
    os.environ["CREDITLENS_DATABASE_URL"] = url
    os.environ.setdefault("CREDITLENS_RATE_LIMIT_PER_MINUTE", "0")
    clock = None if now is None else (lambda: now)
    if clock is not None:
        import domain.clock

        domain.clock.system_clock = clock  # before plain_app imports it
    if kind == "graphql":
        # The app's background loops (the rollup folder polls every 0.1 s, the webhook
        # dispatcher every 0.5 s) would be counted per request in proportion to wall time,
        # which moves with the machine's load: idle them, so counts are of requests only.
        import app.folding

        app.folding.POLL_SECONDS = 3600.0
        os.environ.setdefault("CREDITLENS_WEBHOOK_DISPATCHER", "false")
        from app.main import create_app

        return create_app() if clock is None else create_app(clock=clock)
    if kind == "plain":
        return importlib.import_module("plain_app").app
    return importlib.import_module("floor_app").app


def request_of(kind: str, scenario: str, token: str, key: str) -> tuple[str, str, bytes, bytes]:
    """(method, path, query string, body) of one request of ``scenario`` to ``kind``."""
    query, variables, plain_path = SCENARIOS[scenario]
    if kind == "graphql":
        values = {k: v.replace("{key}", key) for k, v in variables.items()}
        body = json.dumps({"query": query, "variables": values}).encode()
        return "POST", "/graphql", b"", body
    path = (FLOOR_PATHS[scenario] if kind == "floor" else plain_path).replace("{key}", key)
    route, _, qs = path.partition("?")
    return "GET", route, qs.encode(), b""


class Driver:
    """Calls an ASGI app the way uvicorn would, and keeps the last answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.status = 0
        self.body = b""

    async def lifespan(self) -> Any:
        started = asyncio.Event()
        stop = asyncio.Event()
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> dict[str, Any]:
            if messages[0]["type"] == "lifespan.shutdown":
                await stop.wait()
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()
            if message["type"].endswith("failed"):
                raise RuntimeError(message)

        task = asyncio.create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        )
        await started.wait()
        return stop, task

    async def request(self, method: str, path: str, qs: bytes, body: bytes, token: str) -> None:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"user-agent", b"profile_reads"),
        ]
        if body:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": qs,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        self.body = b"".join(chunks)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = json.loads((ROOT / "bench" / "out" / f"{args.dataset}.json").read_text())
    # Counts are of requests only when every run reads the same ranges: with the clock
    # moving, a report's range is cut into other pieces every quarter hour, and a new
    # statement shape is compiled (and prepared) once, inside whichever run meets it.
    now = None if args.live_clock else datetime.fromisoformat(info["loaded_at"])
    app = load_app(args.app, info["url"], now)
    driver = Driver(app)
    stop, task = await driver.lifespan()
    method, path, qs, body = request_of(args.app, args.scenario, info["token"], info["key"])
    token = info["token"]
    for _ in range(args.warmup):
        await driver.request(method, path, qs, body, token)
    if driver.status != 200 or b'"errors"' in driver.body:
        raise SystemExit(f"{args.app} {args.scenario}: {driver.status} {driver.body[:300]!r}")
    profiler = cProfile.Profile() if args.cprofile else None
    crossings = _count_crossings() if args.crossings else None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for _ in range(args.count):
        await driver.request(method, path, qs, body, token)
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    counted = dict(crossings) if crossings is not None else None
    stop.set()
    await task
    if args.dump:
        args.body = driver.body
    result = {
        "app": args.app,
        "scenario": args.scenario,
        "dataset": args.dataset,
        "count": args.count,
        "cpu_us_per_request": round(1e6 * cpu / args.count, 1),
        "wall_us_per_request": round(1e6 * wall / args.count, 1),
        # Kernel work that instruction counts miss: page faults (fresh memory touched) and
        # context switches (a thread handing over, e.g. aiosqlite's worker).
        "minor_faults_per_request": round((after.ru_minflt - usage.ru_minflt) / args.count, 2),
        "context_switches_per_request": round(
            (after.ru_nvcsw + after.ru_nivcsw - usage.ru_nvcsw - usage.ru_nivcsw) / args.count, 2
        ),
        "system_us_per_request": round(1e6 * (after.ru_stime - usage.ru_stime) / args.count, 1),
        "response_bytes": len(driver.body),
        "load": round(os.getloadavg()[0], 2),
    }
    if counted is not None:
        # Calls handed to aiosqlite's thread (each a wake-up of the thread and of the loop),
        # by what was called: bench/PROPOSALS.md R40.
        result["driver_thread_crossings_per_request"] = round(sum(counted.values()) / args.count, 2)
        result["driver_thread_crossings_by_call"] = {
            name: round(number / args.count, 2)
            for name, number in sorted(counted.items(), key=lambda item: -item[1])
        }
    if profiler:
        stats = pstats.Stats(profiler)
        layers: dict[str, float] = defaultdict(float)
        total = 0.0
        for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            layers[layer_of(filename, function)] += tottime
            total += tottime
        result["cprofile_us_per_request"] = {
            label: round(1e6 * seconds / args.count, 1)
            for label, seconds in sorted(layers.items(), key=lambda item: -item[1])
        }
        result["cprofile_total_us"] = round(1e6 * total / args.count, 1)
        calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
        result["python_calls_per_request"] = round(calls / args.count)
        if args.top:
            stats.sort_stats(args.sort).print_stats(args.top)
        if os.environ.get("PROFILE_STATS_FILE"):
            stats.dump_stats(os.environ["PROFILE_STATS_FILE"])
    return result


def _count_crossings() -> defaultdict[str, int]:
    """Count, from now on, the calls aiosqlite hands to its connection's thread, by the
    function called (and a statement's first words)."""
    import aiosqlite.core

    counts: defaultdict[str, int] = defaultdict(int)
    handed = aiosqlite.core.Connection._execute

    async def _execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__name__", type(fn).__name__)
        if args and isinstance(args[0], str):
            name += ": " + " ".join(args[0].split()[:3])
        counts[name] += 1
        return await handed(self, fn, *args, **kwargs)

    aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]
    return counts


def instructions(argv: list[str], count: int) -> float:
    """Instructions per request: two callgrind runs, ``count`` and ``2 * count`` requests."""
    totals = []
    for n in (count, 2 * count):
        out = f"/tmp/callgrind-{os.getpid()}-{n}.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            *argv,
            "--count",
            str(n),
        ]
        subprocess.run(command, check=True, capture_output=True)
        text = Path(out).read_text(errors="replace")
        match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no totals in {out}")
        totals.append(int(match.group(1)))
        Path(out).unlink()
    return (totals[1] - totals[0]) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="postgres-1m", help="bench/out/<name>.json")
    parser.add_argument("--app", choices=["graphql", "plain", "floor"], default="graphql")
    parser.add_argument("--scenario", choices=list(SCENARIOS), default="a-all")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--top", type=int, default=0, help="print the top N functions")
    parser.add_argument("--sort", default="tottime", help="pstats order of --top (cumulative)")
    parser.add_argument("--instructions", action="store_true", help="callgrind, see above")
    parser.add_argument(
        "--live-clock",
        action="store_true",
        help="the system clock instead of 'now' pinned at the dataset's load time",
    )
    parser.add_argument(
        "--crossings",
        action="store_true",
        help="count the calls handed to aiosqlite's thread per request (SQLite)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--dump", help="write the last answer's body to this file")
    args = parser.parse_args()
    if args.instructions:
        argv = [a for a in sys.argv[1:] if a != "--instructions"]
        # drop any --count given: instructions() passes its own
        cleaned: list[str] = []
        skip = False
        for a in argv:
            if skip:
                skip = False
                continue
            if a == "--count":
                skip = True
                continue
            cleaned.append(a)
        per = instructions(cleaned, args.count)
        print(
            json.dumps(
                {"app": args.app, "scenario": args.scenario, "instructions_per_request": round(per)}
            )
        )
        return
    if args.uvloop:
        import uvloop

        result = uvloop.run(run(args))
    else:
        result = asyncio.run(run(args))
    if args.dump:
        Path(args.dump).write_bytes(args.body)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
