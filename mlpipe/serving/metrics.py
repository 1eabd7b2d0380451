"""Request and batching metrics in Prometheus text format, under TF Serving's metric names.

Served at ``/monitoring/prometheus/metrics`` (TF Serving's path when Prometheus monitoring is on), so
dashboards built for ``tensorflow_model_server`` read the built-in server too. Times are in
microseconds, as TF Serving reports them.

With batching on, the batcher's series say whether batches fill: throughput under concurrency
depends on rows per model call, and a timeout that closes batches early shows up here as small
batches and short queuing, not as an error.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's BatchingSession series: model calls made by the batcher, and each request's time in
# the batching queue (labelled with the batch thread pool's name).
BATCH_RUN_COUNT = ":tensorflow:serving:batching_session:wrapped_run_count"
BATCH_QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
BATCH_THREAD_POOL = "mlpipe-batch"  # the batch threads' name prefix (batching.py names them with it)
# mlpipe's own series: rows per model call the batcher made, per model.
BATCH_SIZE = ":mlpipe:serving:batching:batch_size"
# mlpipe's own series: model calls per served version, and their time (the model's share of a request,
# batching included). TF Serving's request series have no version label; a canary beside stable needs
# one to be compared live.
VERSION_REQUEST_COUNT = ":mlpipe:serving:version_request_count"
VERSION_LATENCY = ":mlpipe:serving:version_latency"

# Upper bounds in microseconds: 10 us to 10 s, about three per decade.
LATENCY_BUCKETS_US = (
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000,
    100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
)  # fmt: skip
# TF Serving's buckets for queuing latency: 100 us times powers of 1.2, 52 of them (up to ~1.3 s).
QUEUING_BUCKETS_US = tuple(round(100 * 1.2**i, 1) for i in range(52))
# Rows per batch: powers of two up to 8192 (TF Serving's default max_batch_size is 1000).
BATCH_SIZE_BUCKETS = tuple(2**i for i in range(14))


class _Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, labels: dict[str, str]) -> Iterable[str]:
        cumulative = 0
        edges: tuple[float | str, ...] = (*self.bounds, "+Inf")
        for bound, count in zip(edges, self.counts, strict=True):
            cumulative += count
            le = bound if isinstance(bound, str) else _number(bound)
            yield f"{name}_bucket{_labels(**labels, le=le)} {cumulative}"
        yield f"{name}_sum{_labels(**labels)} {self.total:.1f}"
        yield f"{name}_count{_labels(**labels)} {self.count}"


class ServingMetrics:
    """Thread-safe counters for every request the front ends answer and every batch the batcher runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str, str], _Histogram] = defaultdict(
            lambda: _Histogram(LATENCY_BUCKETS_US)
        )
        self._batches = 0
        self._queuing = _Histogram(QUEUING_BUCKETS_US)
        self._batch_sizes: dict[str, _Histogram] = defaultdict(lambda: _Histogram(BATCH_SIZE_BUCKETS))
        self._versions: dict[tuple[str, int], _Histogram] = defaultdict(
            lambda: _Histogram(LATENCY_BUCKETS_US)
        )

    def record(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """Count one request: ``api`` e.g. ``predict``, ``entrypoint`` ``REST`` or ``GRPC``, ``status`` a code name."""
        with self._lock:
            self._counts[(model_name, status)] += 1
            self._latency[(model_name, api, entrypoint)].add(seconds * 1e6)

    def record_version(self, model_name: str, version: int, seconds: float) -> None:
        """Count one answered request of ``version`` and the time its model call took (s)."""
        with self._lock:
            self._versions[(model_name, version)].add(seconds * 1e6)

    def record_batch(self, model_name: str, rows: int, waits: Sequence[float]) -> None:
        """Count one model call of the batcher: its rows, and how long each of its requests queued (s)."""
        with self._lock:
            self._batches += 1
            self._batch_sizes[model_name].add(rows)
            for seconds in waits:
                self._queuing.add(seconds * 1e6)

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
                lines += histogram.render(REQUEST_LATENCY, labels)
            if self._versions:
                lines += [
                    f"# HELP {VERSION_REQUEST_COUNT} Requests answered by each served version.",
                    f"# TYPE {VERSION_REQUEST_COUNT} counter",
                ]
                for (model, version), histogram in sorted(self._versions.items()):
                    labels = {"model_name": model, "version": str(version)}
                    lines.append(f"{VERSION_REQUEST_COUNT}{_labels(**labels)} {histogram.count}")
                lines += [
                    f"# HELP {VERSION_LATENCY} Distribution of model-call wall time (in microseconds) per version.",
                    f"# TYPE {VERSION_LATENCY} histogram",
                ]
                for (model, version), histogram in sorted(self._versions.items()):
                    lines += histogram.render(VERSION_LATENCY, {"model_name": model, "version": str(version)})
            if not self._batches:  # batching off, or nothing batched yet
                return "\n".join(lines) + "\n"
            lines += [
                f"# HELP {BATCH_RUN_COUNT} Total count of run calls on the wrapped session.",
                f"# TYPE {BATCH_RUN_COUNT} counter",
                f"{BATCH_RUN_COUNT} {self._batches}",
                f"# HELP {BATCH_QUEUING_LATENCY} Distribution of wall time spent (in microseconds) in queuing",
                f"# TYPE {BATCH_QUEUING_LATENCY} histogram",
                *self._queuing.render(BATCH_QUEUING_LATENCY, {"thread_pool_name": BATCH_THREAD_POOL}),
                f"# HELP {BATCH_SIZE} Rows per model call made by the batcher.",
                f"# TYPE {BATCH_SIZE} histogram",
            ]
            for model, histogram in sorted(self._batch_sizes.items()):
                lines += histogram.render(BATCH_SIZE, {"model_name": model})
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """A bucket bound as Prometheus clients print it: integers without a fraction."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels.items()) + "}"
