"""Prometheus metrics through ``prometheus_client``, summed across workers.

Each application has its own ``CollectorRegistry`` (tests build many applications in one
process; the library's global registry would refuse the second). Under
``creditlens serve --workers N`` every worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (``serve`` makes and empties that directory before the workers
start), and ``render`` reads all of them: whichever worker answers ``/metrics`` reports the
whole server, as one process did before.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The ``_created`` series double every counter and mean nothing once summed across workers.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library


class Metrics:
    """The service's counters and histograms; ``multiprocess_dir`` set: across workers."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        # Bounded: paths are the known ones or "other" (app.observer), statuses are few.
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        registry = self.registry
        self.requests = Counter(
            "creditlens_requests", "HTTP requests answered.", ["path", "status"], registry=registry
        )
        self.latency = Histogram(
            "creditlens_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.graphql_errors = Counter(
            "creditlens_graphql_errors", "GraphQL errors answered, by code.", ["code"],
            registry=registry,
        )  # fmt: skip
        self.ingested = Counter(
            "creditlens_events_ingested", "Usage events stored.", registry=registry
        )
        self.duplicates = Counter(
            "creditlens_events_duplicate",
            "Usage events received again and not counted twice.",
            registry=registry,
        )
        self.ingest_latency = Histogram(
            "creditlens_ingest_duration_seconds",
            "Time to validate and commit one ingestion batch (POST /v1/events).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.folded_events = Counter(
            "creditlens_events_folded",
            "Usage events added to the rollups by the folder (db/folding.py).",
            registry=registry,
        )
        self.rollup_lag = Histogram(
            "creditlens_rollup_lag_seconds",
            "Per fold, the time from the commit of its oldest event to the fold: how far the "
            "rollups trail ingestion (reads add the tail meanwhile).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
            registry=registry,
        )
        self.limited = Counter(
            "creditlens_rate_limited",
            "Requests refused by a rate limit.",
            ["surface"],
            registry=registry,
        )
        self.answers = Counter(
            "creditlens_answers",
            "GraphQL answers by whether a kept answer was reused (app/answer_cache.py).",
            ["reused"],
            registry=registry,
        )
        self._answer_children = (self.answers.labels("false"), self.answers.labels("true"))
        self.redis_errors = Counter(
            "creditlens_redis_errors",
            "Redis calls that failed; the service went on without Redis (docs/deploy.md).",
            ["operation"],
            registry=registry,
        )

    def folded(self, events: int, lag_seconds: float) -> None:
        """One fold: how many events it added to the rollups and its oldest one's lag."""
        self.folded_events.inc(events)
        self.rollup_lag.observe(lag_seconds)

    def request(self, path: str, status: int, seconds: float) -> None:
        """One HTTP answer and its latency."""
        # The labelled children, looked up once per (path, status): ``labels()`` checks
        # and joins its arguments and takes a lock on every call (about 4 us a request).
        children = self._request_children.get((path, status))
        if children is None:
            children = (
                self.requests.labels(path=path, status=str(status)),
                self.latency.labels(path=path),
            )
            self._request_children[(path, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def answer_reused(self, reused: bool) -> None:
        """One single-operation GraphQL answer: reused from the answer cache, or executed."""
        self._answer_children[reused].inc()

    def graphql_error(self, code: str) -> None:
        """One error sent to a GraphQL client, by ``extensions.code``."""
        self.graphql_errors.labels(code=code).inc()

    def events_ingested(self, accepted: int, duplicates: int, seconds: float = 0.0) -> None:
        """The outcome of one ingestion batch (the hook ``/v1/events`` calls)."""
        self.ingested.inc(accepted)
        self.duplicates.inc(duplicates)
        self.ingest_latency.observe(seconds)

    def rate_limited(self, surface: str) -> None:
        """One request refused by the limit of ``surface``."""
        self.limited.labels(surface=surface).inc()

    def redis_error(self, operation: str) -> None:
        """One Redis call that failed (the caller degraded as documented)."""
        self.redis_errors.labels(operation=operation).inc()

    def render(self) -> str:
        """The text exposition of this process, or of every worker in multiprocess mode."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            # Registers itself on ``registry``; untyped in the library.
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            return exposition(registry)
        return exposition(self.registry)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def exposition(registry: CollectorRegistry) -> str:
    """The Prometheus text format (0.0.4), as ``generate_latest`` writes it but with the
    labels in the order the service has always written them: ``le`` last, after ``path``
    (``generate_latest`` sorts them; dashboards and our tests match on the old lines)."""
    lines: list[str] = []
    for metric in registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        lines.append(f"# HELP {name} {_escape(metric.documentation)}")
        lines.append(f"# TYPE {name} {metric.type}")
        for sample in metric.samples:
            keys = sorted(key for key in sample.labels if key != "le")
            keys += ["le"] if "le" in sample.labels else []
            labels = ",".join(f'{key}="{_escape(sample.labels[key])}"' for key in keys)
            lines.append(
                f"{sample.name}{{{labels}}} {_number(sample.value)}"
                if labels
                else f"{sample.name} {_number(sample.value)}"
            )
    return "\n".join(lines) + "\n"
