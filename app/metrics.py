"""Prometheus counters and a latency histogram, in the text exposition format."""

from __future__ import annotations

from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{key}="{value.replace(chr(34), "")}"' for key, value in pairs)
    return "{" + inner + "}"


class Metrics:
    """Process-local metrics; each worker exposes its own, as Prometheus expects."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(
            lambda: defaultdict(float)
        )
        self.help: dict[str, str] = {}
        self.histogram: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def inc(self, name: str, help_text: str, amount: float = 1, **labels: str) -> None:
        self.help[name] = help_text
        self.counters[name][tuple(sorted(labels.items()))] += amount

    def graphql_error(self, code: str) -> None:
        """One error sent to a GraphQL client, by ``extensions.code``."""
        self.inc("creditlens_graphql_errors_total", "GraphQL errors answered, by code.", code=code)

    def events_ingested(self, accepted: int, duplicates: int) -> None:
        """The outcome of one ingestion batch (the hook ``/v1/events`` calls)."""
        self.inc("creditlens_events_ingested_total", "Usage events stored.", amount=accepted)
        self.inc(
            "creditlens_events_duplicate_total",
            "Usage events received again and not counted twice.",
            amount=duplicates,
        )

    def rate_limited(self, surface: str) -> None:
        self.inc(
            "creditlens_rate_limited_total",
            "Requests refused by a rate limit.",
            surface=surface,
        )

    def observe_latency(self, seconds: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        # Per bucket counts, then sum and count at the end.
        slots = self.histogram.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                slots[index] += 1
        slots[-2] += seconds
        slots[-1] += 1

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} counter")
            for labels, value in sorted(series.items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
        name = "creditlens_request_duration_seconds"
        lines.append(f"# HELP {name} Time to answer an HTTP request.")
        lines.append(f"# TYPE {name} histogram")
        for labels, slots in sorted(self.histogram.items()):
            for index, bound in enumerate(LATENCY_BUCKETS):
                lines.append(
                    f"{name}_bucket{_labels((*labels, ('le', f'{bound:g}')))} {slots[index]:g}"
                )
            lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {slots[-1]:g}")
            lines.append(f"{name}_sum{_labels(labels)} {slots[-2]:.6f}")
            lines.append(f"{name}_count{_labels(labels)} {slots[-1]:g}")
        return "\n".join(lines) + "\n"
