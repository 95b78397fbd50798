"""``creditlens serve --workers 2`` under app/supervisor.py, as real processes: each worker
listens on a socket of its own (SO_REUSEPORT) and takes its share of new connections, a
killed worker is replaced, SIGINT stops them all with exit code 0, and a port another
server holds is refused in one line. (SIGTERM draining: tests/test_workers.py.)"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tests.live_server import ROOT, LiveServer, live_server

CONNECTIONS = 60
SERVE = (sys.executable, "-c", "from app.cli import main; main()", "serve")


def listeners(port: int) -> dict[int, set[int]]:
    """pid -> inodes of the listening TCP sockets on ``port`` it holds (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "0A":  # TCP_LISTEN
                inodes.add(int(fields[9]))
    held: dict[int, set[int]] = {}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
                if match and int(match.group(1)) in inodes:
                    held.setdefault(int(pid_dir.name), set()).add(int(match.group(1)))
        except OSError:  # another user's process, or one that just ended
            continue
    return held


def wait_for_listeners(
    server: LiveServer, count: int, not_pids: frozenset[int] = frozenset()
) -> dict[int, set[int]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = listeners(server.port)
        if len(held) == count and not (set(held) & not_pids):
            return held
        time.sleep(0.1)
    raise AssertionError(f"listeners {listeners(server.port)}\n{server.log_text()}")


def answered_per_worker(metrics: Path) -> Counter[int]:
    """GET /healthz answered, per worker pid, from each worker's own metrics file."""
    counts: Counter[int] = Counter()
    for path in metrics.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for family in MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if sample.name == "creditlens_requests_total" and sample.labels == {
                    "path": "/healthz",
                    "status": "200",
                }:
                    counts[pid] += int(sample.value)
    return counts


async def many_connections(url: str) -> list[int]:
    """CONNECTIONS requests, eight at a time, each on a connection of its own."""
    no_reuse = httpx.Limits(max_connections=8, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=no_reuse) as http:
        answers = await asyncio.gather(*(http.get("/healthz") for _ in range(CONNECTIONS)))
    return [answer.status_code for answer in answers]


async def test_each_worker_has_its_own_socket_and_a_killed_one_is_replaced(
    database_url, redis_url, tmp_path
):
    metrics = tmp_path / "metrics"
    with live_server(
        database_url,
        tmp_path / "server.log",
        serve_args=("--workers", "2"),
        environment={"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
        redis_url=redis_url,
    ) as server:
        held = wait_for_listeners(server, 2)
        # Two workers, one listening socket each, none in the supervisor.
        assert server.pid not in held
        assert all(len(inodes) == 1 for inodes in held.values()), held
        assert len(set.union(*held.values())) == 2, held

        before = answered_per_worker(metrics)
        statuses = await many_connections(server.url)
        assert statuses == [200] * CONNECTIONS
        # A worker counts an answer just after sending it: wait for the last counts.
        deadline = time.monotonic() + 10
        answered = answered_per_worker(metrics) - before
        while sum(answered.values()) < CONNECTIONS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            answered = answered_per_worker(metrics) - before
        assert sum(answered.values()) == CONNECTIONS, answered
        # The kernel hashes each connection to a socket: both workers take a share (all 60
        # on one worker, or fewer than 10 on either, has odds under 1 in 10^6).
        assert set(answered) == set(held), (answered, held)
        assert min(answered.values()) >= 10, answered

        victim = min(held)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for_listeners(server, 2, not_pids=frozenset({victim}))
        assert set(held) - {victim} < set(replaced), (held, replaced)
        assert await many_connections(server.url) == [200] * CONNECTIONS

        # Ctrl-C (SIGINT) to the supervisor: the workers drain and go, exit code 0.
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=60) == 0, server.log_text()
        assert listeners(server.port) == {}
        assert "Traceback" not in server.log_text()


async def test_a_port_another_server_holds_is_refused_in_one_line(database_url, redis_url):
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = await asyncio.to_thread(
            subprocess.run,
            [*SERVE, "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env={**os.environ, "CREDITLENS_DATABASE_URL": database_url}
            | {"CREDITLENS_REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}:"), done.stderr
    assert "Traceback" not in done.stderr
