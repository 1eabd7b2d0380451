"""The feedback loop end to end, on the Local runner: train -> serve -> traffic -> labels -> new span ->
retrain -> push (as canary).

1. Train on span 0 (taxi trips, ``big_tipper`` label) and push as ``stable``
   (CsvExampleGen -> StatisticsGen -> SchemaGen -> Trainer -> Pusher(version_label="stable")).
2. Serve ``models.config`` with request logging on (``logging_config``, every request), send
   traffic: each request a JSON tf.Example with a ``request_id`` feature, from trips the model never
   saw; stop the server, which completes the log files.
3. Labels arrive later: ``labels/span-1.csv`` (request_id, big_tipper) for most requests; the rest
   are still unknown.
4. Rerun the pipeline with the feedback branch: RequestLogExampleGen joins logs and labels into
   span 1, StatisticsGen + ExampleValidator compare it with span 0's statistics (schema anomalies
   and drift of ``trip_start_hour``; the run stops if they fail), the Trainer retrains on span 1 and
   the Pusher pushes it as ``canary`` beside stable. Span 0's nodes come from the cache.
5. Serve again and ask both labels; promote with ``mlpipe promote`` when the canary's live metrics
   hold up (``docs/lifecycle.md``).

    PYTHONPATH=$PWD /work/venv/bin/python examples/feedback_loop.py --workdir /tmp/feedback
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import http.client
import json
import os
import sys
import threading
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from mlpipe import Pipeline  # noqa: E402  (the repository first on the path)

TAXI_CSV = os.path.join(REPO, "examples", "data", "chicago_taxi.csv")
MODULE_FILE = os.path.join(REPO, "examples", "feedback_module.py")
MODEL = "taxi"
COLUMNS = {
    "trip_miles": float,
    "fare": float,
    "trip_seconds": int,
    "trip_start_hour": int,
}
LABEL = "big_tipper"
# Jensen-Shannon divergence of the pickup hour's histogram, span 1 against span 0 (TFDV's comparator).
DRIFT = {"trip_start_hour": {"jensen_shannon_divergence": 0.1}}


def prepare_data(workdir: str, train_rows: int, traffic_rows: int) -> list[dict[str, Any]]:
    """Write span 0 (``data/span-0/data.csv``); return the next trips, the traffic to come, with labels."""
    rows: list[dict[str, Any]] = []
    with open(TAXI_CSV, newline="") as f:
        for raw in csv.DictReader(f):
            if any(raw[c] == "" for c in (*COLUMNS, "tips")) or float(raw["fare"]) <= 0:
                continue
            row = {
                name: kind(float(raw[name])) if kind is int else kind(raw[name])
                for name, kind in COLUMNS.items()
            }
            row[LABEL] = int(float(raw["tips"]) > 0.2 * float(raw["fare"]))
            rows.append(row)
            if len(rows) == train_rows + traffic_rows:
                break
    # every k-th trip is traffic, the others span 0: the same distribution, as a model's live traffic
    # should be (the validator's drift check is there for when it is not)
    step = (train_rows + traffic_rows) // traffic_rows
    traffic = rows[step - 1 :: step][:traffic_rows]
    train = [row for i, row in enumerate(rows) if (i + 1) % step or i >= step * traffic_rows]
    os.makedirs(os.path.join(workdir, "data", "span-0"), exist_ok=True)
    with open(os.path.join(workdir, "data", "span-0", "data.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, [*COLUMNS, LABEL])
        writer.writeheader()
        writer.writerows(train)
    return traffic


def create_pipeline(workdir: str, feedback_span: int | None = None) -> Pipeline:
    """Span 0's training pipeline; with ``feedback_span``, retrain on that span of logged requests."""
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.example_validator import ExampleValidator
    from mlpipe.components.pusher import Pusher
    from mlpipe.components.request_log_example_gen import RequestLogExampleGen
    from mlpipe.components.schema_gen import SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen
    from mlpipe.components.trainer import Trainer

    example_gen = CsvExampleGen(input_base=os.path.join(workdir, "data", "span-0"))
    statistics = StatisticsGen(examples=example_gen.outputs["examples"])
    schema = SchemaGen(statistics=statistics.outputs["statistics"])
    components: list[Any] = [example_gen, statistics, schema]
    examples, label = example_gen.outputs["examples"], "stable"
    if feedback_span is not None:
        feedback = RequestLogExampleGen(
            request_log_pattern=os.path.join(workdir, "logs", f"{MODEL}-*.tfrecord"),
            labels=os.path.join(workdir, "labels", f"span-{feedback_span}.csv"),
            label_feature=LABEL,
            span=feedback_span,
        )
        feedback_statistics = StatisticsGen(examples=feedback.outputs["examples"]).with_id(
            "feedback_statistics"
        )
        validator = ExampleValidator(
            statistics=feedback_statistics.outputs["statistics"],
            schema=schema.outputs["schema"],
            baseline_statistics=statistics.outputs["statistics"],
            drift_comparator=DRIFT,
        )
        components += [feedback, feedback_statistics, validator]
        examples, label = feedback.outputs["examples"], "canary"
    trainer = Trainer(
        module_file=MODULE_FILE,
        examples=examples,
        custom_config={"epochs": 5},
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        push_destination={"filesystem": {"base_directory": os.path.join(workdir, "serving", MODEL)}},
        version_label=label,
    )
    if feedback_span is not None:
        trainer.after(validator)  # train only on a span that passed validation
    return Pipeline("feedback_loop", os.path.join(workdir, "pipeline"), [*components, trainer, pusher])


def enable_request_logging(workdir: str, sampling_rate: float = 1.0) -> str:
    """Add ``logging_config`` to the model's entry in ``models.config`` (pushes keep it); returns the file."""
    from mlpipe.serving.config import RequestLogging, read_model_config, write_model_config

    config = os.path.join(workdir, "serving", "models.config")
    prefix = os.path.join(workdir, "logs", MODEL)
    models = [
        dataclasses.replace(m, logging=RequestLogging(prefix, sampling_rate)) if m.name == MODEL else m
        for m in read_model_config(config)
    ]
    write_model_config(models, config)
    return config


def send_traffic(rest_address: str, rows: list[dict[str, Any]], clients: int = 4) -> list[str]:
    """One regress request per row, from ``clients`` threads; returns the request ids, in row order."""
    host, port = rest_address.rsplit(":", 1)
    ids = [f"req-{i:05d}" for i in range(len(rows))]
    failures: list[str] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for i in range(number, len(rows), clients):
            features = {name: rows[i][name] for name in COLUMNS}
            body = json.dumps({"examples": [{**features, "request_id": ids[i]}]})
            connection.request("POST", f"/v1/models/{MODEL}/labels/stable:regress", body)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                failures.append(f"{ids[i]}: {response.status} {answer[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return ids


def write_labels(
    workdir: str, span: int, rows: list[dict[str, Any]], ids: list[str], every_nth_missing: int
) -> str:
    """The late labels: request_id -> big_tipper for every request except each ``every_nth_missing``-th."""
    path = os.path.join(workdir, "labels", f"span-{span}.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", LABEL])
        for i, (request_id, row) in enumerate(zip(ids, rows, strict=True)):
            if (i + 1) % every_nth_missing:
                writer.writerow([request_id, row[LABEL]])
    return path


def run(workdir: str, train_rows: int = 1500, traffic_rows: int = 300) -> dict[str, Any]:
    """The whole loop; returns what happened (versions, counts, the new span's artifact)."""
    from mlpipe.orchestration.local import LocalDagRunner
    from mlpipe.serving import ModelServer
    from mlpipe.serving.config import read_model_config

    traffic = prepare_data(workdir, train_rows, traffic_rows)
    print(f"1. training on {train_rows} trips (span 0), pushing as stable")
    first = LocalDagRunner(progress=False).run(create_pipeline(workdir))
    stable = int(first.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed_version"))

    config = enable_request_logging(workdir)
    print(f"2. serving {config} with request logging; sending {len(traffic)} requests")
    with ModelServer(
        read_model_config(config), poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    ) as server:
        ids = send_traffic(server.rest_address, traffic)
    # leaving the block stopped the server: every logged request is in a completed file

    labels = write_labels(workdir, 1, traffic, ids, every_nth_missing=10)
    print(f"3. labels arrived for some requests: {labels}")
    print("4. new span from the logs + labels, validated against span 0, retrained, pushed as canary")
    second = LocalDagRunner(progress=False).run(create_pipeline(workdir, feedback_span=1))
    canary = int(second.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed_version"))
    span = second.results["RequestLogExampleGen"].outputs["examples"][0]

    with ModelServer(
        read_model_config(config), poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    ) as server:
        answers = {}
        for label in ("stable", "canary"):
            example = {**{name: traffic[0][name] for name in COLUMNS}, "request_id": f"check-{label}"}
            body = json.dumps({"examples": [example]})
            host, port = server.rest_address.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.request("POST", f"/v1/models/{MODEL}/labels/{label}:regress", body)
            answers[label] = json.loads(connection.getresponse().read())
            connection.close()
    print(f"5. stable (version {stable}) and canary (version {canary}) both answer: {answers}")
    print(f"   promote when the canary holds up: mlpipe promote {config} {MODEL}")
    return {
        "stable_version": stable,
        "canary_version": canary,
        "request_ids": ids,
        "traffic": traffic,
        "labels_file": labels,
        "span_examples": span,
        "first_run": first,
        "second_run": second,
        "model_config": config,
        "answers": answers,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", required=True, help="a new or empty directory for data, pipeline root, serving, logs"
    )
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--traffic-rows", type=int, default=300)
    options = parser.parse_args()
    run(options.workdir, options.train_rows, options.traffic_rows)
