"""RequestLogExampleGen on hand-made PredictionLog files: which requests become examples, with what.

The logs are built with the tensorflow-serving-api protos and TensorFlow's TFRecordWriter (not the
server's writer); the expected examples are written out by hand.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError
from mlpipe.types import Examples


def example(**features):
    import tensorflow as tf

    feature = {}
    for name, value in features.items():
        if isinstance(value, float):
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        elif isinstance(value, int):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_logs(path: Path) -> None:
    """Four requests: classify with context (r1, r2), predict of serialized examples (r3, r1 again as a
    retry), regress without an id, and a predict of plain tensors (no examples)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    records = []
    classify = prediction_log_pb2.PredictionLog()
    with_context = classify.classify_log.request.input.example_list_with_context
    with_context.context.CopyFrom(example(city="Chicago", miles=0.0))
    with_context.examples.add().CopyFrom(example(request_id="r1", miles=1.5))
    with_context.examples.add().CopyFrom(example(request_id="r2", miles=2.5, city="Evanston"))
    records.append(classify)
    predict = prediction_log_pb2.PredictionLog()
    tensor = predict.predict_log.request.inputs["examples"]
    tensor.dtype = tf.string.as_datatype_enum
    tensor.tensor_shape.dim.add(size=2)
    tensor.string_val.extend(
        [
            example(request_id="r3", miles=3.5, city="Oak Park").SerializeToString(),
            example(request_id="r1", miles=9.0, city="retry").SerializeToString(),
        ]
    )
    records.append(predict)
    regress = prediction_log_pb2.PredictionLog()
    regress.regress_log.request.input.example_list.examples.add().CopyFrom(example(miles=4.5))
    records.append(regress)
    tensors = prediction_log_pb2.PredictionLog()
    tensors.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0, 2.0]]))
    records.append(tensors)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())


def run(tmp_path: Path, labels: str, **parameters) -> Examples:
    from mlpipe.components.request_log_example_gen import RequestLogExampleGen

    out = Examples(uri=str(tmp_path / "examples"))
    os.makedirs(out.uri)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    params = {
        "request_log_pattern": str(tmp_path / "logs" / "taxi-*.tfrecord"),
        "labels": labels,
        "label_feature": "big_tipper",
        "span": 3,
        "request_id_feature": "request_id",
        "keep_request_id": False,
        "output_config": {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}},
        **parameters,
    }
    RequestLogExampleGen.execute(
        ExecutionContext(
            node_id="feedback",
            pipeline_name="p",
            run_id="r",
            execution_id=1,
            inputs={},
            outputs={"examples": out},
            parameters=params,
            tmp_dir=str(tmp_path / "tmp"),
        )  # fmt: skip
    )
    return out


def read_span(out: Examples) -> dict:
    import tensorflow as tf

    files = glob.glob(os.path.join(out.uri, "Split-all", "*.gz"))
    got = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        parsed = tf.train.Example.FromString(record.numpy())
        got[parsed.features.feature["miles"].float_list.value[0]] = parsed
    return got


def test_logged_examples_join_late_labels_into_a_span(tmp_path):
    write_logs(tmp_path / "logs" / "taxi-20261204T000000-1-00001.tfrecord")
    (tmp_path / "logs" / "taxi-20261204T000001-1-00002.tfrecord.writing").write_bytes(b"half a file")
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,big_tipper\nr1,1\nr3,0\nr9,1\n")
    out = run(tmp_path, str(labels))

    got = read_span(out)
    assert got == {
        1.5: example(city="Chicago", miles=1.5, big_tipper=1),
        3.5: example(city="Oak Park", miles=3.5, big_tipper=0),
    }
    assert out.get_property("span") == 3 and out.split_names == ["all"]
    assert out.get_custom_property("num_logged") == 5  # r1, r2, r3, the retry of r1, the id-less regress
    assert out.get_custom_property("num_requests_without_examples") == 1  # the predict of plain tensors
    assert out.get_custom_property("num_labeled") == 2
    assert out.get_custom_property("num_unlabeled") == 1  # r2
    assert out.get_custom_property("num_duplicate_requests") == 1  # the retry of r1: the first one counts
    assert out.get_custom_property("num_without_request_id") == 1
    assert out.get_custom_property("num_labels_without_request") == 1  # r9


def test_parquet_labels_and_keeping_the_id(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_logs(tmp_path / "logs" / "taxi-1.tfrecord")
    pq.write_table(pa.table({"request_id": ["r2"], "big_tipper": [0.25]}), tmp_path / "labels.parquet")
    got = read_span(run(tmp_path, str(tmp_path / "labels.parquet"), keep_request_id=True))
    assert got == {2.5: example(city="Evanston", miles=2.5, request_id="r2", big_tipper=0.25)}


@pytest.mark.parametrize(
    "labels_text, message",
    [
        ("request_id,big_tipper\nr1,1\nr1,0\n", r"labels.csv: row 3: request id 'r1' has a second label"),
        (
            "request_id,label\nr1,1\n",
            r"needs columns 'request_id' and 'big_tipper'; missing \['big_tipper'\]",
        ),
        ("request_id,big_tipper\nnope,1\n", r"none of the 5 logged requests in 1 files has a label"),
    ],
    ids=["duplicate-label", "missing-column", "nothing-joined"],
)
def test_bad_labels_are_reported_with_file_and_row(tmp_path, labels_text, message):
    write_logs(tmp_path / "logs" / "taxi-1.tfrecord")
    labels = tmp_path / "labels.csv"
    labels.write_text(labels_text)
    with pytest.raises(DataError, match=message):
        run(tmp_path, str(labels))


def test_no_log_files_is_a_clear_error(tmp_path):
    (tmp_path / "labels.csv").write_text("request_id,big_tipper\nr1,1\n")
    with pytest.raises(DataError, match="no request log files match"):
        run(tmp_path, str(tmp_path / "labels.csv"))
