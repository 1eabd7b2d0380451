"""Serving latency and throughput of the built-in server, against the in-process SavedModel call.

Prints one JSON line. The models are shaped like the one TFX's taxi pipeline pushes: the
``serving_default`` signature parses serialized tf.Examples (16 raw features), applies the Transform
preprocessing and runs a wide-and-deep network. For each model, in one run:

- ``floor``: the SavedModel signature called in this process (p50/p99 of one example, calls/s);
- for REST and gRPC, batching off and on: one client (p50/p99 ms, requests/s) and 32 concurrent
  clients (requests/s, p50/p99). ``rest_h11`` is the same REST API through h11's HTTP/1.1 parser
  (``h11_transport.py``, on the same server and event loop) instead of the built-in hand-written
  transport: what parsing with a well-kept library would cost. Everything repeats for ``--rounds`` rounds, each round measuring
  the floor and then serving every configuration in turn. Each measurement reports its median
  run (by p50 for one client, by requests/s for 32) with every round's value beside it;
  ``overhead_p50_ms`` is the median of the rounds' one-client p50 minus that round's floor, and
  ``batching_speedup`` the median of the rounds' ratios. Clients run in a separate process and
  send pre-encoded requests, REST over raw keep-alive sockets and gRPC as hand-framed HTTP/2
  (``http2_grpc_client.py``), so the numbers are the server's, not a client library's. ``--grpc-client grpcio`` uses grpcio's client instead (the blocking stub for one
  client, ``grpc.aio`` for 32), which adds its own per-call latency and CPU on the server's 2
  cores;
- ``batching_timeout_sweep``: the same at further batch timeouts (each takes its turn in every
  round). With batching, ``rows_per_batch`` (read from the server's metrics) shows whether
  batches fill: a timeout shorter than the time the server needs to take in the 32 requests
  closes batches early;
- ``grpc_empty_handler``: the same 32 gRPC clients against a ``grpc.aio`` server that answers
  Predict with a fixed response (grpcio's own cost per call, the ceiling for any Python gRPC
  server here), and the share of it that gRPC with batching reaches.

``taxi`` (DNN 100-70-50-25) is the realistic case: a sub-millisecond model, so per-request server
work dominates and batching can only remove the model's share. ``taxi_large`` (DNN 3 x 2048) is
inference-bound, the case batching is for.

Goals: single-request p50 within 2 ms of the floor; batching >= 3x the throughput of no batching
at 32 concurrent clients (``goals_met`` reports it per batch timeout: one configuration must
reach it for every model and protocol). Default run: about five minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)

if TYPE_CHECKING:
    from mlpipe.serving import ModelServer

# The raw features of the TFX Chicago taxi example, with the preprocessing its Transform applies.
DENSE_FLOAT = ("trip_miles", "fare", "trip_seconds")  # z-score
BUCKETIZED = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")  # 10 buckets
CATEGORICAL = {  # integer ids, one-hot (wide) and embedded (deep)
    "trip_start_hour": 24,
    "trip_start_day": 8,
    "trip_start_month": 13,
    "pickup_census_tract": 2000,
    "dropoff_census_tract": 2000,
    "pickup_community_area": 80,
    "dropoff_community_area": 80,
}
VOCABULARY = ("payment_type", "company")  # vocabulary of 1000 + 10 OOV buckets
EXAMPLE = {
    "trip_miles": 2.5,
    "fare": 9.75,
    "trip_seconds": 720.0,
    "pickup_latitude": 41.89,
    "pickup_longitude": -87.63,
    "dropoff_latitude": 41.92,
    "dropoff_longitude": -87.65,
    "trip_start_hour": 14,
    "trip_start_day": 3,
    "trip_start_month": 6,
    "pickup_census_tract": 1201,
    "dropoff_census_tract": 1404,
    "pickup_community_area": 8,
    "dropoff_community_area": 32,
    "payment_type": "Credit Card",
    "company": "Flash Cab",
}
PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict"


def build_model(export_dir: str, hidden: tuple[int, ...] = (100, 70, 50, 25)) -> None:
    """Save a model shaped like TFX's taxi model: its serving signature parses raw tf.Examples, applies
    the Transform preprocessing (z-scores, buckets, vocabularies) and runs a wide-and-deep network
    (DNN 100-70-50-25). Weights are seeded; their values do not matter.
    """
    import tensorflow as tf

    class Taxi(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = tf.random.Generator.from_seed(7)
            words = tf.constant([f"word{i}" for i in range(1000)])
            self.vocabularies = [
                tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(words, tf.range(1000, dtype=tf.int64)), -1
                )
                for _ in VOCABULARY
            ]
            self.boundaries = [sorted(float(41.6 + 0.05 * i) for i in range(9)) for _ in BUCKETIZED]
            self.embeddings = [tf.Variable(rng.normal([size, 8]) * 0.1) for size in CATEGORICAL.values()]
            self.embeddings += [tf.Variable(rng.normal([1010, 8]) * 0.1) for _ in VOCABULARY]
            width = len(DENSE_FLOAT) + 8 * (len(CATEGORICAL) + len(VOCABULARY)) + 10 * len(BUCKETIZED)
            self.deep = []
            for units in hidden:
                self.deep.append(
                    (tf.Variable(rng.normal([width, units]) * 0.1), tf.Variable(tf.zeros([units])))
                )
                width = units
            self.deep_out = tf.Variable(rng.normal([width, 1]) * 0.1)
            wide_width = 10 * len(BUCKETIZED) + sum(CATEGORICAL.values()) + 1010 * len(VOCABULARY)
            self.wide = tf.Variable(rng.normal([wide_width, 1]) * 0.01)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            spec = {name: tf.io.VarLenFeature(tf.float32) for name in DENSE_FLOAT + BUCKETIZED}
            spec.update({name: tf.io.VarLenFeature(tf.int64) for name in CATEGORICAL})
            spec.update({name: tf.io.VarLenFeature(tf.string) for name in VOCABULARY})
            raw = tf.io.parse_example(serialized, spec)
            batch = tf.shape(serialized)[0]

            def fill_in_missing(sparse, default):  # TFX's _fill_in_missing
                dense = tf.sparse.to_dense(
                    tf.SparseTensor(sparse.indices, sparse.values, [tf.cast(batch, tf.int64), 1]), default
                )
                return tf.squeeze(dense, axis=1)

            deep, wide = [], []
            for name in DENSE_FLOAT:
                value = fill_in_missing(raw[name], 0.0)
                deep.append(tf.expand_dims((value - 10.0) / 25.0, 1))
            for name, boundaries in zip(BUCKETIZED, self.boundaries, strict=True):
                bucket = tf.raw_ops.Bucketize(input=fill_in_missing(raw[name], 0.0), boundaries=boundaries)
                wide.append(tf.one_hot(bucket, 10))
                deep.append(tf.one_hot(bucket, 10))
            for (name, size), table in zip(CATEGORICAL.items(), self.embeddings, strict=False):
                ids = tf.clip_by_value(fill_in_missing(raw[name], tf.constant(0, tf.int64)), 0, size - 1)
                wide.append(tf.one_hot(ids, size))
                deep.append(tf.nn.embedding_lookup(table, ids))
            for name, vocabulary, table in zip(
                VOCABULARY, self.vocabularies, self.embeddings[len(CATEGORICAL) :], strict=True
            ):
                text = fill_in_missing(raw[name], "")
                ids = vocabulary.lookup(text)
                ids = tf.where(ids < 0, 1000 + tf.strings.to_hash_bucket_fast(text, 10), ids)
                wide.append(tf.one_hot(ids, 1010))
                deep.append(tf.nn.embedding_lookup(table, ids))
            x = tf.concat(deep, axis=1)
            for weights, bias in self.deep:
                x = tf.nn.relu(tf.matmul(x, weights) + bias)
            logit = tf.matmul(x, self.deep_out) + tf.matmul(tf.concat(wide, axis=1), self.wide)
            return {"output_0": tf.sigmoid(logit)}

    model = Taxi()
    tf.saved_model.save(model, export_dir, signatures={"serving_default": model.serve})


def measure_floor(function: Any, serialized: bytes, seconds: float) -> dict[str, float]:
    """``function`` (the model's serving signature, loaded in this process) called on one serialized
    example, as the server would call it."""
    import tensorflow as tf

    batch = tf.constant([serialized])
    for _ in range(50):
        function(examples=batch)["output_0"].numpy()
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        function(examples=tf.constant([serialized]))["output_0"].numpy()
        latencies.append(time.perf_counter() - start)
    return _summary(latencies, sum(latencies))


def run_clients(
    protocol: str, address: str, payload: bytes, concurrency: int, requests: int, grpc_client: str
) -> dict[str, float]:
    """Load from a separate process (so client work does not share the server's interpreter)."""
    spec = json.dumps(
        {
            "protocol": protocol,
            "grpc_client": grpc_client,
            "address": address,
            "payload": base64.b64encode(payload).decode("ascii"),
            "concurrency": concurrency,
            "requests": requests,
        }
    )
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--load-client"],
        input=spec,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout)


def load_client(spec: dict) -> dict[str, float]:
    """Send ``requests`` pre-encoded requests, ``concurrency`` at a time; latency per request.

    REST: one thread per client over a raw keep-alive socket. gRPC: all calls on one connection,
    see :func:`_http2_grpc_load`, or grpcio's client (:func:`_grpc_load`, the blocking stub).
    """
    payload = base64.b64decode(spec["payload"])
    concurrency, total = spec["concurrency"], spec["requests"]
    host, port = spec["address"].rsplit(":", 1)
    if spec["protocol"] == "grpc" and spec["grpc_client"] == "http2":
        return _http2_grpc_load(spec["address"], payload, concurrency, total)
    if spec["protocol"] == "grpc" and concurrency > 1:
        return _grpc_load(spec["address"], payload, concurrency, total)
    if spec["protocol"] == "grpc":  # one client: the blocking stub, as a user calls the server

        def make_call():
            import grpc

            predict = grpc.insecure_channel(spec["address"]).unary_unary(PREDICT_PATH)
            return lambda: predict(payload, timeout=30)

        return _threaded_load(make_call, concurrency, total)
    request = (
        f"POST /v1/models/taxi:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload

    def make_call():
        # A raw keep-alive socket: http.client costs more CPU than the server on a 2-core machine.
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def call():
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += _receive(sock)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            while len(body) < length:
                body += _receive(sock)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0])

        return call

    return _threaded_load(make_call, concurrency, total)


def _threaded_load(make_call, concurrency: int, total: int) -> dict[str, float]:
    """``concurrency`` threads, each with its own ``make_call()``, after 20 warm-up calls each."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)

    def worker(count: int) -> None:
        call = make_call()
        try:
            for _ in range(20):
                call()
        except Exception:
            with lock:
                errors[0] += 1
        barrier.wait(timeout=120)
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            try:
                call()
            except Exception:
                with lock:
                    errors[0] += 1
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(total // concurrency,)) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    summary = _summary(latencies, time.perf_counter() - started)
    summary["errors"] = errors[0]
    return summary


def _http2_grpc_load(address: str, payload: bytes, concurrency: int, total: int) -> dict[str, float]:
    """``concurrency`` calls in flight on one HTTP/2 connection, after 20 warm-up calls per client."""
    from http2_grpc_client import Http2GrpcConnection, run_calls

    connection = Http2GrpcConnection(address, PREDICT_PATH, payload)
    try:
        _, warmup_errors, _ = run_calls(connection, concurrency, 20 * concurrency)
        latencies, errors, elapsed = run_calls(connection, concurrency, total // concurrency * concurrency)
    finally:
        connection.close()
    summary = _summary(latencies, elapsed)
    summary["errors"] = warmup_errors + errors
    return summary


def _grpc_load(address: str, payload: bytes, concurrency: int, total: int) -> dict[str, float]:
    """``concurrency`` calls in flight on one channel from one event loop (grpc.aio).

    32 threads of the blocking client would spend more CPU on the GIL than the server spends on a
    request, on a machine where both share 2 cores.
    """
    import asyncio

    import grpc

    async def main() -> dict[str, float]:
        async with grpc.aio.insecure_channel(address) as channel:
            predict = channel.unary_unary(PREDICT_PATH)
            errors = 0
            latencies: list[float] = []

            async def worker(count: int, record: bool) -> None:
                nonlocal errors
                for _ in range(count):
                    start = time.perf_counter()
                    try:
                        await predict(payload, timeout=30)
                    except grpc.aio.AioRpcError:
                        errors += 1
                    if record:
                        latencies.append(time.perf_counter() - start)

            await asyncio.gather(*(worker(20, False) for _ in range(concurrency)))  # warm-up
            started = time.perf_counter()
            await asyncio.gather(*(worker(total // concurrency, True) for _ in range(concurrency)))
            summary = _summary(latencies, time.perf_counter() - started)
            summary["errors"] = errors
            return summary

    return asyncio.run(main())


def measure_grpc_empty_handler(
    request: bytes, response: bytes, concurrency: int, requests: int, grpc_client: str
) -> dict:
    """Requests/s of a ``grpc.aio`` server whose Predict returns a fixed response: no parsing, no model.

    The most a Python gRPC front end answers on this machine with the same client, so the gRPC
    numbers can be read against what grpcio itself costs per call.
    """
    import grpc

    from mlpipe.serving.event_loop import LoopThread

    async def start() -> tuple[grpc.aio.Server, int]:
        async def predict(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return response

        server = grpc.aio.server()
        service, method = PREDICT_PATH.strip("/").split("/")
        handler = grpc.unary_unary_rpc_method_handler(predict)  # bytes in, bytes out
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {method: handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    loop = LoopThread("bench-grpc-empty-handler")
    try:
        server, port = loop.run(start())
        try:
            return run_clients("grpc", f"127.0.0.1:{port}", request, concurrency, requests, grpc_client)
        finally:
            loop.run(server.stop(0))
    finally:
        loop.stop()


def _receive(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("server closed the connection")
    return chunk


def _summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered) * 1e3, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
        "rps": round(len(ordered) / elapsed, 1),
    }


MODES = ("no_batching", "batching")  # the two configurations measured with one client too
PROTOCOLS = ("rest", "rest_h11", "grpc")
SERVED = ("rest", "grpc")  # what the built-in server serves: the goals are about these
MODELS = {
    # name: (description, DNN hidden layers, share of the default request counts)
    "taxi": ("TFX-taxi-shaped: parse + transform + wide&deep DNN 100-70-50-25", (100, 70, 50, 25), 1.0),
    "taxi_large": ("the same with a DNN of 3 x 2048 (inference-bound)", (2048, 2048, 2048), 0.4),
}


def measure_model(
    tmp: str, name: str, hidden: tuple[int, ...], share: float, args: argparse.Namespace
) -> dict:
    """Floor, then each protocol with and without batching, single and concurrent clients."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from mlpipe.serving import (
        BatchingParameters,
        ModelServer,
        ServedModel,
        publish_version,
        serialize_example,
    )

    serialized = serialize_example(EXAMPLE)
    bodies = {
        "rest": json.dumps({"instances": [{"b64": base64.b64encode(serialized).decode("ascii")}]}).encode()
    }
    grpc_request = predict_pb2.PredictRequest()
    grpc_request.model_spec.name = "taxi"
    grpc_request.inputs["examples"].CopyFrom(tf.make_tensor_proto([serialized]))
    bodies["grpc"] = grpc_request.SerializeToString()

    export, base = os.path.join(tmp, name, "export"), os.path.join(tmp, name, "serving", "taxi")
    build_model(export, hidden)
    publish_version(export, base)
    floor_function = tf.saved_model.load(export).signatures["serving_default"]
    result: dict = {}
    single, concurrent = int(args.single_requests * share), int(args.concurrent_requests * share)
    batching = BatchingParameters(
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
    )

    bodies["rest_h11"] = bodies["rest"]

    def single_client(address: str, protocol: str) -> dict:
        return run_clients(protocol, address, bodies[protocol], 1, single, args.grpc_client)

    def concurrent_clients(server: ModelServer, address: str, protocol: str) -> dict:
        return run_batched_clients(
            server, protocol, address, bodies[protocol], args.concurrency, concurrent, args.grpc_client
        )

    # Each round measures the floor, then serves every configuration in turn and runs its clients, so
    # a drift in the VM's speed (often 2x within minutes here) reaches both sides of each round's
    # difference or ratio alike.
    swept = {
        timeout: dataclasses.replace(batching, batch_timeout_micros=timeout)
        for timeout in args.sweep_timeouts_micros
    }
    configs = {"no_batching": None, "batching": batching, **{str(t): params for t, params in swept.items()}}
    floors: list[dict] = []
    singles: dict[str, dict[str, list[dict]]] = {
        mode: {protocol: [] for protocol in PROTOCOLS} for mode in MODES
    }
    runs: dict[str, dict[str, list[dict]]] = {
        config: {protocol: [] for protocol in PROTOCOLS} for config in configs
    }
    for _ in range(args.rounds):
        floors.append(measure_floor(floor_function, serialized, seconds=1.0))
        for config, params in configs.items():
            with ModelServer(ServedModel("taxi", base), batching=params) as server, h11_rest(server) as h11:
                addresses = {"rest": server.rest_address, "rest_h11": h11, "grpc": server.grpc_address}
                for protocol in PROTOCOLS:
                    if config in singles:
                        singles[config][protocol].append(single_client(addresses[protocol], protocol))
                    runs[config][protocol].append(concurrent_clients(server, addresses[protocol], protocol))
    result["floor"] = _median_run(floors, "p50_ms")
    for mode in MODES:
        result[mode] = {
            protocol: {
                "single": _median_run(singles[mode][protocol], "p50_ms"),
                "concurrent": _median_run(runs[mode][protocol], "rps"),
            }
            for protocol in PROTOCOLS
        }
    result["overhead_p50_ms"] = {
        protocol: round(
            statistics.median(
                run["p50_ms"] - floor["p50_ms"]
                for run, floor in zip(singles["no_batching"][protocol], floors, strict=True)
            ),
            3,
        )
        for protocol in PROTOCOLS
    }
    result["batching_speedup"] = {
        protocol: _median_speedup(runs["batching"][protocol], runs["no_batching"][protocol])
        for protocol in PROTOCOLS
    }
    result["errors"] = sum(
        run["errors"]
        for by_config in (runs, singles)
        for by_protocol in by_config.values()
        for protocol_runs in by_protocol.values()
        for run in protocol_runs
    )
    result["batching_timeout_sweep"] = {
        str(timeout): {
            protocol: {
                **_median_run(runs[str(timeout)][protocol], "rps"),
                "speedup": _median_speedup(runs[str(timeout)][protocol], runs["no_batching"][protocol]),
            }
            for protocol in PROTOCOLS
        }
        for timeout in swept
    }
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "taxi"
    response.outputs["output_0"].CopyFrom(tf.make_tensor_proto([[0.5]], dtype=tf.float32))
    empty = measure_grpc_empty_handler(
        bodies["grpc"], response.SerializeToString(), args.concurrency, concurrent, args.grpc_client
    )
    result["grpc_empty_handler"] = {
        "concurrent": empty,
        "batching_share": round(result["batching"]["grpc"]["concurrent"]["rps"] / empty["rps"], 2),
    }
    return result


def _median_speedup(batching: list[dict], no_batching: list[dict]) -> float:
    """The median over rounds of batching's requests/s over no batching's in the same round."""
    ratios = [b["rps"] / n["rps"] for b, n in zip(batching, no_batching, strict=True)]
    return round(statistics.median(ratios), 2)


def _speedup_at(model_result: dict, timeout: int, default_timeout: int) -> dict[str, float]:
    """Batching's speedup per protocol at batch timeout ``timeout`` (the default or a swept one)."""
    if timeout == default_timeout:
        return model_result["batching_speedup"]
    swept = model_result["batching_timeout_sweep"][str(timeout)]
    return {protocol: run["speedup"] for protocol, run in swept.items()}


@contextlib.contextmanager
def h11_rest(server: ModelServer) -> Iterator[str]:
    """The server's REST API also served through h11, on the server's event loop; yields its address."""
    from h11_transport import H11Server

    rest = H11Server(server._rest.handler, server.max_request_bytes)
    port = server._loop.run(rest.start(server.host, 0))
    try:
        yield f"{server.host}:{port}"
    finally:
        server._loop.run(rest.stop())


def _median_run(runs: list[dict], key: str) -> dict:
    """The run with the median ``key`` (the lower middle one of an even count), with every run's
    ``key`` beside it as ``<key>_rounds``."""
    ordered = sorted(runs, key=lambda run: run[key])
    return {**ordered[(len(ordered) - 1) // 2], f"{key}_rounds": [run[key] for run in runs]}


def run_batched_clients(
    server: ModelServer, protocol: str, address: str, payload: bytes, concurrency: int, requests: int,
    grpc_client: str,
) -> dict:  # fmt: skip
    """:func:`run_clients`, plus (batching on) the mean rows per model call from the server's metrics."""
    if server.batching is None:
        return run_clients(protocol, address, payload, concurrency, requests, grpc_client)
    before = _batching_totals(server.rest_address)
    run = run_clients(protocol, address, payload, concurrency, requests, grpc_client)
    after = _batching_totals(server.rest_address)
    batches = after[0] - before[0]
    run["rows_per_batch"] = round((after[1] - before[1]) / batches, 1) if batches else None
    return run


def _batching_totals(rest_address: str) -> tuple[float, float]:
    """(model calls, rows) the server's batcher made so far, from its Prometheus page."""
    from mlpipe.serving.metrics import BATCH_RUN_COUNT, BATCH_SIZE, PROMETHEUS_PATH

    with urllib.request.urlopen(f"http://{rest_address}{PROMETHEUS_PATH}", timeout=30) as page:
        text = page.read().decode("utf-8")

    def total(series: str) -> float:
        pattern = rf"^{re.escape(series)}(?:\{{[^}}]*\}})? (\S+)$"
        return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))

    return total(BATCH_RUN_COUNT), total(BATCH_SIZE + "_sum")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-requests", type=int, default=1500, help="requests per single-client run")
    parser.add_argument("--concurrent-requests", type=int, default=4000, help="requests per 32-client run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--max-batch-size",
        type=int,
        help="default: the concurrency; a bigger batch never fills, so every request waits the timeout",
    )
    parser.add_argument(
        "--batch-timeout-micros",
        type=int,
        default=10000,
        help="default 10 ms: the server takes in 32 gRPC requests in 6-8 ms here, so 5 ms closes "
        "batches at 11-15 rows (see the sweep)",
    )
    parser.add_argument(
        "--sweep-timeouts-micros",
        default="5000,20000",
        help="further batch timeouts measured at the concurrency only (comma-separated; '' for none)",
    )
    parser.add_argument("--num-batch-threads", type=int, default=1)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="repeats of every measurement, each round serving every configuration in turn (medians reported)",
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS)
    )
    parser.add_argument(
        "--grpc-client",
        choices=("http2", "grpcio"),
        default="http2",
        help="gRPC load generator: hand-framed HTTP/2 (default; the server's cost) or grpcio's client",
    )
    parser.add_argument("--load-client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.max_batch_size = args.max_batch_size or args.concurrency
    args.sweep_timeouts_micros = [int(t) for t in args.sweep_timeouts_micros.split(",") if t.strip()]
    if args.load_client:
        print(json.dumps(load_client(json.load(sys.stdin))))
        return

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    result: dict = {"benchmark": "serving", "cpus": os.cpu_count(), "request": "1 serialized tf.Example"}
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-serving-") as tmp:
        for name in args.models.split(","):
            description, hidden, share = MODELS[name]
            result[name] = {"model": description, **measure_model(tmp, name, hidden, share, args)}
    chosen = args.models.split(",")
    result["batching_parameters"] = {
        "max_batch_size": args.max_batch_size,
        "batch_timeout_micros": args.batch_timeout_micros,
        "num_batch_threads": args.num_batch_threads,
        "swept_timeouts_micros": args.sweep_timeouts_micros,
        "rounds": args.rounds,
    }
    result["grpc_client"] = args.grpc_client
    result["goals_met"] = {
        "overhead_p50_under_2ms": all(result[m]["overhead_p50_ms"][p] < 2.0 for m in chosen for p in SERVED),
        # One batching configuration must reach 3x for every model and protocol.
        "batching_speedup_at_least_3x_by_timeout_micros": {
            str(timeout): all(
                _speedup_at(result[m], timeout, args.batch_timeout_micros)[p] >= 3.0
                for m in chosen
                for p in SERVED
            )
            for timeout in (args.batch_timeout_micros, *args.sweep_timeouts_micros)
        },
    }
    result["errors"] = sum(result[m]["errors"] for m in chosen)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
