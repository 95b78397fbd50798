"""What ``creditlens serve --workers N`` prepares before the workers start.

app/supervisor.py runs the workers (one SO_REUSEPORT socket each; it restarts one that dies,
and on SIGTERM passes the signal on and waits for each to drain: in-flight requests are
answered, subscriptions closed with 1012 "service restart" so clients reconnect elsewhere,
within ``shutdown_timeout_seconds``). Two things must exist before the first worker imports
the application:

- a metrics directory (prometheus_client's ``PROMETHEUS_MULTIPROC_DIR``), emptied, where
  every worker writes its values so that ``/metrics`` on any of them sums all;
- Redis (``CREDITLENS_REDIS_URL``) for more than one worker: without it each worker would
  keep its own rate limits (N times the limit) and hear only its own ingests (a live
  subscription would miss the events another worker took), so ``serve`` refuses to start
  rather than run subtly wrong (docs/deploy.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from app.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class WorkersRefused(Exception):
    """``--workers`` cannot be honoured with these settings; the message says why."""


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse more than one worker without a shared Redis."""
    if workers < 1:
        raise WorkersRefused("--workers must be at least 1")
    if workers > 1 and settings.redis_url is None:
        raise WorkersRefused(
            f"--workers {workers} needs CREDITLENS_REDIS_URL: without Redis each worker keeps "
            "its own rate limits and live-usage subscriptions miss other workers' events "
            "(docs/deploy.md); run one worker, or set CREDITLENS_REDIS_URL"
        )


def prepare_metrics_directory(settings: Settings, workers: int) -> Path | None:
    """The emptied multiprocess metrics directory the workers will share, or ``None`` for
    one worker without one configured. The caller removes a directory made here
    (``made`` is true) when the server stops."""
    if settings.metrics_multiprocess_dir:
        directory = Path(settings.metrics_multiprocess_dir)
        directory.mkdir(parents=True, exist_ok=True)
    elif workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="creditlens-metrics-"))
        # The workers read it from the environment they inherit (prometheus_client decides
        # its storage when first imported): the one place this code writes os.environ.
        os.environ[MULTIPROC_ENV] = str(directory)
    else:
        return None
    # Files of an earlier run would be summed into this one's counts.
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory
