"""The feedback-loop demo (``examples/feedback_loop.py``) end to end on the Local runner, checked from outside.

Oracles: the trips the demo sent and the labels file it wrote (plain CSV rows), against the log files
and the new span read back with TensorFlow's own readers; the new span's lineage in ML Metadata.
"""

from __future__ import annotations

import collections
import glob
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).parents[2]


def load_demo():
    spec = importlib.util.spec_from_file_location(
        "feedback_loop_demo", REPO / "examples" / "feedback_loop.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_feedback_loop_logs_every_request_and_retrains_on_the_labelled_span(tmp_path):
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    from mlpipe.metadata.queries import lineage
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.orchestration.launcher import store_config

    demo = load_demo()
    result = demo.run(str(tmp_path), train_rows=600, traffic_rows=120)
    ids, traffic = result["request_ids"], result["traffic"]

    # Every request sent is in the log, once, with the stable version that answered it.
    logs = sorted(glob.glob(str(tmp_path / "logs" / "taxi-*.tfrecord")))
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(logs)]
    logged = {}  # request id -> the version that answered
    for record in records:
        for example in record.regress_log.request.input.example_list.examples:
            request_id = example.features.feature["request_id"].bytes_list.value[0].decode()
            assert request_id not in logged
            logged[request_id] = record.log_metadata.model_spec.version.value
    stable, canary = result["stable_version"], result["canary_version"]
    # the traffic (120), and the demo's last two requests, one by label each, served after the retrain
    assert len(ids) == 120 and len(records) == len(logged) == 122
    assert logged == {**dict.fromkeys(ids, stable), "check-stable": stable, "check-canary": canary}

    # The new span: exactly the labelled requests' features plus their late labels.
    with open(result["labels_file"]) as f:
        labels = dict(line.strip().split(",") for line in list(f)[1:])
    assert len(labels) == 108  # every 10th request is still unlabelled
    expected = collections.Counter(
        (
            np.float32(row["trip_miles"]),
            np.float32(row["fare"]),
            row["trip_seconds"],
            row["trip_start_hour"],
            int(labels[request_id]),
        )
        for request_id, row in zip(ids, traffic, strict=True)
        if request_id in labels
    )
    span = result["span_examples"]
    files = glob.glob(os.path.join(span.uri, "Split-*", "*.gz"))
    got = collections.Counter()
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(serialized.numpy()).features.feature
        assert "request_id" not in feature
        got[
            (
                np.float32(feature["trip_miles"].float_list.value[0]),
                np.float32(feature["fare"].float_list.value[0]),
                feature["trip_seconds"].int64_list.value[0],
                feature["trip_start_hour"].int64_list.value[0],
                feature["big_tipper"].int64_list.value[0],
            )
        ] += 1
    assert got == expected
    assert span.get_property("span") == 1 and sorted(span.split_names) == ["eval", "train"]
    assert span.get_custom_property("num_unlabeled") == 12
    assert span.get_custom_property("num_labeled") == 108

    # Span 1 was validated against span 0's statistics (drift measured), then trained on and pushed.
    second = result["second_run"]
    assert second.state_of("CsvExampleGen") == "CACHED" and second.state_of("Trainer") == "COMPLETE"
    anomalies_uri = second.results["ExampleValidator"].outputs["anomalies"][0].uri
    anomalies = anomalies_pb2.Anomalies.FromString(
        Path(anomalies_uri, "Split-train", "SchemaDiff.pb").read_bytes()
    )
    (drift,) = anomalies.drift_skew_info
    assert drift.path.step == ["trip_start_hour"] and 0 < drift.drift_measurements[0].value < 0.1
    store = MetadataStore(store_config(demo.create_pipeline(str(tmp_path), 1).compile()))
    try:
        downstream = {a.type_name for a in lineage(store, span.id).downstream}
    finally:
        store.close()
    assert {"Model", "PushedModel"} <= downstream
    assert canary > stable
    assert set(result["answers"]) == {"stable", "canary"}
    assert result["answers"]["stable"] != result["answers"]["canary"]
