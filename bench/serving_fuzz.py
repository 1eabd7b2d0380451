"""Fuzz the built-in REST server at length: >= 10,000 requests, no 5xx, and still serving after.

Prints one JSON line. Serves the test models of ``tests/serving/conftest.py`` (linear with two
versions and labels, multi, taxi, strict) and sends schemathesis cases generated from
``docs/tf-serving-openapi.yaml`` (positive and negative, every operation), TF Serving documents
from our generator and raw malformed HTTP (``tests/serving/rest_fuzz.py``). ``tests/serving/test_rest_fuzz.py`` is the bounded CI version.
Run from the repository root: ``PYTHONPATH=$PWD python bench/serving_fuzz.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from mlpipe import _tf_env  # noqa: E402, F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples",
        type=int,
        default=8,
        help="schemathesis positive cases per operation (half as many negative)",
    )
    parser.add_argument("--documents", type=int, default=8000, help="TF Serving requests from our generator")
    parser.add_argument("--raw", type=int, default=3000, help="raw malformed HTTP requests")
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args()

    from mlpipe.serving import ModelServer, ServedModel, VersionPolicy, publish_version
    from tests.serving import conftest
    from tests.serving.rest_fuzz import FuzzReport, fuzz_documents, fuzz_openapi, fuzz_raw, still_answers

    logging.basicConfig(level=logging.CRITICAL)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlpipe-bench-fuzz-") as tmp:
        exports = {
            name: os.path.join(tmp, "exports", name)
            for name in ("linear_v1", "linear_v2", "multi", "taxi", "strict")
        }
        conftest.build_linear(exports["linear_v1"], 1.0)
        conftest.build_linear(exports["linear_v2"], 2.0)
        conftest.build_multi(exports["multi"])
        conftest.build_taxi(exports["taxi"])
        conftest.build_strict(exports["strict"])
        root = os.path.join(tmp, "serving")
        publish_version(exports["linear_v1"], os.path.join(root, "linear"))
        publish_version(exports["linear_v2"], os.path.join(root, "linear"))
        for name in ("multi", "taxi", "strict"):
            publish_version(exports[name], os.path.join(root, name))
        models = [
            ServedModel(
                "linear",
                os.path.join(root, "linear"),
                version_policy=VersionPolicy.all(),
                version_labels={"stable": 1, "canary": 2},
            ),
            *(ServedModel(name, os.path.join(root, name)) for name in ("multi", "taxi", "strict")),
        ]
        report = FuzzReport()
        with ModelServer(models, poll_wait_seconds=0) as server:
            fuzz_openapi(server.rest_address, args.examples, args.seed, report)
            schemathesis_requests = report.requests
            fuzz_documents(server.rest_address, args.documents, args.seed, report)
            fuzz_raw(server.rest_address, args.raw, report)
            answering = still_answers(server.rest_address)
    result = {
        "benchmark": "serving_fuzz",
        **report.as_dict(),
        "requests_per_second": round(report.requests / report.seconds, 1),
        "still_answering": answering,
        "schemathesis_requests": schemathesis_requests,
        "examples_per_operation": args.examples,
        "documents": args.documents,
        "raw_requests": args.raw,
        "first_server_errors": report.server_errors[:5],
        "first_nonconforming": report.nonconforming[:5],
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
