"""A real ``creditlens serve`` process on a loopback port, for tests that need real sockets
(slow clients, disconnects, workers, kill -9) and for the benchmarks that start servers
(bench/workers.py, bench/ticks.py). Its log goes to a file the test can read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LiveServer:
    host: str
    port: int
    log: Path
    # `creditlens serve` (the supervisor, with --workers): tests may signal or kill -9 it.
    process: subprocess.Popen[bytes] = field(compare=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(
    database_url: str,
    log: Path | None = None,
    *,
    serve_args: tuple[str, ...] = (),
    environment: dict[str, str] | None = None,
    port: int | None = None,
    **settings: object,
) -> Iterator[LiveServer]:
    """``creditlens serve`` with ``CREDITLENS_<NAME>`` for each keyword, on ``port`` (default:
    a free one), its log in ``log`` (default: a temporary file); stopped on exit (SIGTERM, then
    SIGKILL after 10 s), unless the test already ended it."""
    with ExitStack() as cleanup:
        if log is None:
            log = Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "server.log"
        yield cleanup.enter_context(
            _started(database_url, log, serve_args, environment or {}, port, settings)
        )


@contextmanager
def _started(
    database_url: str,
    log: Path,
    serve_args: tuple[str, ...],
    environment: dict[str, str],
    port: int | None,
    settings: dict[str, object],
) -> Iterator[LiveServer]:
    port = port or free_port()
    env = {
        **os.environ,
        "CREDITLENS_DATABASE_URL": database_url,
        "CREDITLENS_LOG_JSON": "true",
        **{f"CREDITLENS_{name.upper()}": str(value) for name, value in settings.items()},
        **environment,
    }
    command = [sys.executable, "-c", "from app.cli import main; main()"]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = LiveServer("127.0.0.1", port, log, process)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, server.log_text()
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
