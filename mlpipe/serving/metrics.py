"""Request count and latency in Prometheus text format, under TF Serving's metric names.

Served at ``/monitoring/prometheus/metrics`` (TF Serving's path when Prometheus monitoring is on), so
dashboards built for ``tensorflow_model_server`` read the built-in server too. Latency is in
microseconds, as TF Serving reports it.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"

# Upper bounds in microseconds: 10 us to 10 s, about three per decade.
LATENCY_BUCKETS_US = (
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000,
    100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
)  # fmt: skip


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_US) + 1)
        self.total = 0.0
        self.count = 0


class ServingMetrics:
    """Thread-safe counters for every request the front ends answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str, str], _Histogram] = defaultdict(_Histogram)

    def record(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """Count one request: ``api`` e.g. ``predict``, ``entrypoint`` ``REST`` or ``GRPC``, ``status`` a code name."""
        micros = seconds * 1e6
        with self._lock:
            self._counts[(model_name, status)] += 1
            histogram = self._latency[(model_name, api, entrypoint)]
            histogram.counts[bisect.bisect_left(LATENCY_BUCKETS_US, micros)] += 1
            histogram.total += micros
            histogram.count += 1

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4) of all metrics."""
        lines = [
            f"# HELP {REQUEST_COUNT} The total number of requests.",
            f"# TYPE {REQUEST_COUNT} counter",
        ]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(f"{REQUEST_COUNT}{_labels(model_name=model, status=status)} {count}")
            lines += [
                f"# HELP {REQUEST_LATENCY} Distribution of wall-time (in microseconds) for requests.",
                f"# TYPE {REQUEST_LATENCY} histogram",
            ]
            for (model, api, entrypoint), histogram in sorted(self._latency.items()):
                labels = {"model_name": model, "API": api, "entrypoint": entrypoint}
                cumulative = 0
                for bound, count in zip((*LATENCY_BUCKETS_US, "+Inf"), histogram.counts, strict=True):
                    cumulative += count
                    lines.append(f"{REQUEST_LATENCY}_bucket{_labels(**labels, le=str(bound))} {cumulative}")
                lines.append(f"{REQUEST_LATENCY}_sum{_labels(**labels)} {histogram.total:.1f}")
                lines.append(f"{REQUEST_LATENCY}_count{_labels(**labels)} {histogram.count}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels.items()) + "}"
