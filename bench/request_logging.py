"""What request logging (``logging_config``, sampling_rate 1) adds to a request's latency.

Prints one JSON line. One process, one model (the serving tests' TFX-style ``taxi`` model: serialized
tf.Examples in), two servers run in turn, rounds alternating: logging off, logging on. Each round
``--clients`` threads send ``--requests`` REST classify requests each over keep-alive connections;
every request's wall time is kept, and the same with one client. Reported per configuration: p50 / p99 ms and requests/s over all
rounds; for logging on also the records written (must equal the requests sent) and the cost of the
request-path part alone (``RequestLogger.log``: the sampling draw and the queue put), timed in a
tight loop. ``added_<n>_clients`` is on minus off. With many clients on 2 cores the writer
thread's work (building and serializing the protos, under the GIL) competes with serving; the
request path itself adds only ``enqueue_us``.

    PYTHONPATH=$PWD /work/venv/bin/python bench/request_logging.py [--clients 16 --requests 200 --rounds 3]
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(address: str, clients: int, requests: int) -> tuple[list[float], float]:
    host, port = address.rsplit(":", 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        for i in range(requests):
            body = json.dumps(
                {
                    "signature_name": "classes",
                    "examples": [{"trip_miles": i / 7, "hour": 3, "request_id": f"{number}-{i}"}],
                }
            )
            started = time.perf_counter()
            connection.request("POST", "/v1/models/taxi:classify", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies[number].append(time.perf_counter() - started)
            assert response.status == 200
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [x for per_client in latencies for x in per_client], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from mlpipe.io.examples import read_tfrecords
    from mlpipe.serving import ModelServer, ServedModel, publish_version
    from mlpipe.serving.config import RequestLogging
    from mlpipe.serving.request_log import RequestLogger
    from tests.serving.conftest import build_taxi

    work = tempfile.mkdtemp(prefix="bench-request-log-")
    build_taxi(os.path.join(work, "export"))
    base = os.path.join(work, "taxi")
    publish_version(os.path.join(work, "export"), base)
    prefix = os.path.join(work, "logs", "taxi")
    configs = {
        "logging_off": ServedModel("taxi", base),
        "logging_on": ServedModel("taxi", base, logging=RequestLogging(prefix, 1.0)),
    }
    runs = [(name, clients) for name in configs for clients in (1, args.clients)]
    latencies: dict[tuple[str, int], list[float]] = {run: [] for run in runs}
    seconds: dict[tuple[str, int], float] = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for name, model in configs.items():
            server = ModelServer(model, poll_wait_seconds=0)
            server.start()
            try:
                load(server.rest_address, 2, 20)  # warm up connections and the model
                for clients in (1, args.clients):
                    values, elapsed = load(server.rest_address, clients, args.requests)
                    latencies[(name, clients)] += values
                    seconds[(name, clients)] += elapsed
            finally:
                server.stop()  # writes every queued record
    sent = args.rounds * (1 + args.clients) * args.requests
    files = glob.glob(prefix + "-*.tfrecord")
    written = len(read_tfrecords(files)) - args.rounds * 2 * 20  # the warm-up requests are logged too

    logger = RequestLogger([ServedModel("taxi", base, logging=RequestLogging(prefix + "-enqueue", 1.0))])
    enqueue = []
    request, response = [b"x" * 200], [[("no", 0.5), ("yes", 0.5)]]
    for _ in range(20_000):
        started = time.perf_counter()
        logger.log("classify", "taxi", 1, "classes", request, response)
        enqueue.append(time.perf_counter() - started)
    logger.close()

    result: dict[str, Any] = {"bench": "request_logging", "rounds": args.rounds, "requests_sent": sent}
    for (name, clients), values in latencies.items():
        result[f"{name}_{clients}_clients"] = {
            "p50_ms": round(percentile(values, 0.5) * 1e3, 3),
            "p99_ms": round(percentile(values, 0.99) * 1e3, 3),
            "requests_per_s": round(len(values) / seconds[(name, clients)], 1),
        }
    for clients in (1, args.clients):
        on, off = result[f"logging_on_{clients}_clients"], result[f"logging_off_{clients}_clients"]
        result[f"added_{clients}_clients"] = {
            "p50_ms": round(on["p50_ms"] - off["p50_ms"], 3),
            "p99_ms": round(on["p99_ms"] - off["p99_ms"], 3),
        }
    result["records_written"] = written
    result["records_lost"] = sent - written
    result["log_files"] = len(files)
    result["enqueue_us"] = {
        "p50": round(statistics.median(enqueue) * 1e6, 2),
        "p99": round(percentile(enqueue, 0.99) * 1e6, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
