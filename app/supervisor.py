"""``creditlens serve --workers N`` (N > 1): N uvicorn servers, each on its own listening socket.

Why not uvicorn's own supervisor: its workers accept on one socket they share, and the worker
that wakes first accepts a whole burst of connections, so a few keep-alive clients pile on one
worker while the other idles (bench/workers.py measured CPU splits of 0.00 + 0.80). Here each
worker binds its own socket on the same host and port with ``SO_REUSEPORT``, and the kernel
hashes each new connection to one of them (0.46 + 0.41 in the same bench; docs/deploy.md).
That option, spread this way, is Linux's (3.9 and later): ``serve --workers N`` is for Linux.

What stays as under uvicorn's supervisor (tests/test_workers.py, tests/test_supervisor.py):

- each worker is ``uvicorn.Server`` with the same settings as one-worker ``serve``: the
  header-timeout protocol (httptools), uvloop when installed, no access log,
  ``shutdown_timeout_seconds`` to drain;
- SIGTERM or SIGINT (Ctrl-C) to the supervisor: every worker gets SIGTERM and drains
  (uvicorn's graceful shutdown: in-flight requests answered, subscriptions closed with 1012);
  the supervisor exits 0 once all have gone. A second SIGINT is passed on as SIGINT, which
  makes uvicorn stop waiting (its "CTRL+C to force quit");
- a worker that dies is replaced (at most once a second per worker, so a worker that crashes
  at once does not spin a core); one that could not start (uvicorn's ``STARTUP_FAILURE``:
  the application, or the port, is broken and would be on every restart) stops them all, and
  the supervisor exits with that code.

Unlike uvicorn's supervisor, this one holds no listening socket: while a worker is being
replaced the kernel sends its share to the others, and a draining worker's closed socket
takes no new connection. It does check first that nothing else listens on the port, because
``SO_REUSEPORT`` would otherwise let the workers join another server's sockets (any process
of the same user that set the option) and split its traffic silently.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import time
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.http_protocol import protocol_name

log = logging.getLogger("creditlens.supervisor")
# A fresh interpreter per worker, as uvicorn does: forking would copy the supervisor's state
# (and threads) into each worker.
SPAWN = multiprocessing.get_context("spawn")
PR_SET_PDEATHSIG = 1
RESTART_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class ServeOptions:
    """What every worker needs to build its server; plain values, so they pickle."""

    host: str
    port: int
    log_level: str
    shutdown_timeout_seconds: int


class PortInUse(Exception):
    """Something already listens on the port; the message says where."""


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn's own bind: a restart need not wait for TIME_WAIT connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Binds the port once without ``SO_REUSEPORT``: this fails if any socket holds it."""
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as error:
        raise PortInUse(f"cannot listen on {host}:{port}: {error.strerror}") from error


def _die_with_parent(parent: int) -> None:
    """A worker gets SIGTERM (and drains) if the supervisor is killed outright, instead of
    serving on as an orphan that nothing restarts or stops."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(options: ServeOptions, parent: int) -> None:
    """One worker process: its own ``SO_REUSEPORT`` socket, served by ``uvicorn.Server``
    (which handles SIGTERM and SIGINT itself, as in one-worker ``serve``)."""
    _die_with_parent(parent)
    config = uvicorn.Config(
        "app.asgi:app",
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        access_log=False,
        # As one-worker `serve`: httptools with the header deadline and bound (h11 without
        # httptools), uvloop when installed.
        http=protocol_name(),
        loop="auto",
        timeout_graceful_shutdown=options.shutdown_timeout_seconds,
    )
    try:
        sock = listening_socket(options.host, options.port, reuse_port=True)
    except OSError as error:
        logging.getLogger("uvicorn.error").error(error)
        raise SystemExit(STARTUP_FAILURE) from error
    # uvicorn re-raises the SIGINT it drained for: the supervisor knows, no traceback.
    with suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``workers`` processes, replaces those that die, stops them on a signal."""

    def __init__(self, options: ServeOptions, workers: int) -> None:
        self.options = options
        self.slots: list[BaseProcess | None] = [None] * workers
        self.started_at = [0.0] * workers
        self.stopping = False
        self.exit_code = 0
        self.signals: list[int] = []

    def run(self) -> int:
        """Serves until a signal or a startup failure; the exit code for the command."""
        check_port_free(self.options.host, self.options.port)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        previous_wakeup = signal.set_wakeup_fd(wake_write)
        previous = {sig: signal.signal(sig, self._noted) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info(
                "serving on %s:%d with %d workers, one SO_REUSEPORT socket each",
                self.options.host,
                self.options.port,
                len(self.slots),
            )
            self._supervise(wake_read)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            os.close(wake_read)
            os.close(wake_write)
        return self.exit_code

    def pids(self) -> list[int]:
        return [p.pid for p in self.slots if p is not None and p.pid is not None]

    def _noted(self, sig: int, frame: FrameType | None) -> None:
        # Only noted here: the loop acts on it, woken through the wakeup pipe.
        self.signals.append(sig)

    def _supervise(self, wake_read: int) -> None:
        while True:
            self._handle_signals()
            if not self.stopping:
                self._replace_the_dead()
            live = [p for p in self.slots if p is not None and p.is_alive()]
            if self.stopping and not live:
                return
            # Woken by a worker's exit or a signal; the timeout covers a delayed restart.
            wait([p.sentinel for p in live] + [wake_read], timeout=RESTART_INTERVAL_SECONDS)
            self._drain_pipe(wake_read)

    @staticmethod
    def _drain_pipe(wake_read: int) -> None:
        os.set_blocking(wake_read, False)
        try:
            while os.read(wake_read, 512):
                pass
        except BlockingIOError:
            pass

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if self.stopping and sig == signal.SIGINT:
                log.info("second SIGINT: workers stop waiting for requests in flight")
                self._signal_all(signal.SIGINT)
            elif not self.stopping:
                log.info("%s: stopping the workers", signal.Signals(sig).name)
                self.stopping = True
                self._signal_all(signal.SIGTERM)

    def _signal_all(self, sig: int) -> None:
        for process in self.slots:
            if process is not None and process.is_alive() and process.pid is not None:
                os.kill(process.pid, sig)

    def _replace_the_dead(self) -> None:
        for index, process in enumerate(self.slots):
            if process is not None and process.is_alive():
                continue
            if process is not None:
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s could not start: stopping", process.pid)
                    self.exit_code = STARTUP_FAILURE
                    self.stopping = True
                    self._signal_all(signal.SIGTERM)
                    return
                if time.monotonic() - self.started_at[index] < RESTART_INTERVAL_SECONDS:
                    continue  # replaced at the next turn, not in a tight loop
                log.warning(
                    "worker %s exited (code %s): starting another", process.pid, process.exitcode
                )
                self.slots[index] = None
            self._start(index)

    def _start(self, index: int) -> None:
        process = SPAWN.Process(
            target=run_worker, args=(self.options, os.getpid()), name=f"creditlens-worker-{index}"
        )
        process.start()
        self.slots[index] = process
        self.started_at[index] = time.monotonic()
