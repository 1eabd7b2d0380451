"""RequestLogExampleGen: served requests joined with labels that arrived later -> a new span of Examples.

The feedback loop's way back into training. ``mlpipe serve`` logs requests (``logging_config``) as
``PredictionLog`` TFRecord files; each request's tf.Example carries a request id feature
(``request_id``; ``PredictionLog`` itself has no id). When the true outcomes are known, a CSV or
Parquet file maps request id -> label. This component joins the two and writes what ExampleGen
writes: ``Split-<name>/data_tfrecord-*.gz`` with the ``span`` property set, so StatisticsGen,
ExampleValidator (drift against the training data's statistics) and the Trainer take it as they
take any span.

- Each output Example is the logged request's features (classify, regress and multi-inference
  requests' examples, with their context merged; predict requests whose one string input holds
  serialized tf.Examples) plus the label under ``label_feature``. The id feature is dropped unless
  ``keep_request_id``: it is no feature of the model, and the training schema does not know it.
- A logged request without a label yet is left out (counted in ``num_unlabeled``): a later span
  picks it up when its label arrives. A label without a logged request is counted
  (``num_labels_without_request``; sampling logs only some requests). A request logged twice (a
  client retry) counts once, the first. Requests without an id, and requests that hold no
  tf.Examples (plain tensors), are counted and left out.
- Splits are a hash of the request id (``output_config``, default train:eval = 2:1), so a request
  lands in the same split on every run.

The node's cache key covers its parameters, not the files' contents: give each batch of feedback
its own ``span`` (the demo counts them up), as TFX's ExampleGen spans name new data.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import Any

from mlpipe.components.example_gen import BaseExampleGen
from mlpipe.components.example_gen_streaming import (
    Block,
    Encoded,
    Reader,
    SplitPlan,
    encode_rows,
    write_streamed_splits,
)
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.types.standard import Examples


class RequestLogExampleGen(BaseExampleGen):
    """Logged requests (``request_log_pattern``, a glob of ``.tfrecord`` files) + ``labels`` -> Examples of ``span``."""

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "request_log_pattern": ParameterSpec(str),
            "labels": ParameterSpec(str),
            "label_feature": ParameterSpec(str),
            "span": ParameterSpec(int),
            "request_id_feature": ParameterSpec(str, default="request_id"),
            "keep_request_id": ParameterSpec(bool, default=False),
            "output_config": ParameterSpec(dict, default=None),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        labels = self.parameters["labels"]
        if not labels.endswith((".csv", ".parquet")):
            raise DefinitionError(f"{self.id}: labels must be a .csv or .parquet file, got {labels!r}")
        if self.parameters["span"] < 0:
            raise DefinitionError(f"{self.id}: span must be >= 0, got {self.parameters['span']}")

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        from mlpipe.io.examples import read_tfrecords

        params = ctx.parameters
        id_feature, label_feature = params["request_id_feature"], params["label_feature"]
        files = sorted(glob.glob(params["request_log_pattern"]))
        if not files:
            raise DataError(
                f"no request log files match {params['request_log_pattern']!r}; mlpipe serve writes "
                "<filename_prefix>-*.tfrecord once a file is complete (it rotates, and on stop)"
            )
        labels = read_labels(params["labels"], id_feature, label_feature)
        joined: dict[bytes, bytes] = {}
        counts = {"logged": 0, "without_id": 0, "duplicates": 0, "unlabeled": 0, "not_examples": 0}
        for path in files:
            for record in read_tfrecords([path]):
                examples = logged_examples(record, path)
                if not examples:
                    counts["not_examples"] += 1
                for example in examples:
                    counts["logged"] += 1
                    ids = example.features.feature[id_feature].bytes_list.value
                    if len(ids) != 1:
                        counts["without_id"] += 1
                        continue
                    request_id = ids[0]
                    if request_id in joined:
                        counts["duplicates"] += 1
                        continue
                    label = labels.get(request_id)
                    if label is None:
                        counts["unlabeled"] += 1
                        continue
                    if not params["keep_request_id"]:
                        del example.features.feature[id_feature]
                    _set_feature(example.features.feature[label_feature], label)
                    joined[request_id] = example.SerializeToString()
        if not joined:
            raise DataError(
                f"none of the {counts['logged']} logged requests in {len(files)} files has a label in "
                f"{params['labels']} (ids without labels: {counts['unlabeled']}, without a {id_feature!r} "
                f"feature: {counts['without_id']}); check that clients send {id_feature!r} in their examples"
            )
        ids, records = list(joined), list(joined.values())
        write_streamed_splits(ctx, _JoinedRequests(ids, records), ["logged"])
        out = ctx.outputs["examples"]
        out.set_property("span", params["span"])
        out.set_property("version", 0)
        out.set_custom_property("input_files", [*files, os.path.abspath(params["labels"])])
        out.set_custom_property("num_logged", counts["logged"])
        out.set_custom_property("num_labeled", len(records))
        out.set_custom_property("num_unlabeled", counts["unlabeled"])
        out.set_custom_property("num_without_request_id", counts["without_id"])
        out.set_custom_property("num_duplicate_requests", counts["duplicates"])
        out.set_custom_property("num_requests_without_examples", counts["not_examples"])
        out.set_custom_property("num_labels_without_request", len(set(labels) - set(joined)))
        ctx.log.info(
            "span %d: %d labelled examples from %d logged requests in %d files (%d without a label yet, "
            "%d labels without a logged request)",
            params["span"],
            len(records),
            counts["logged"],
            len(files),
            counts["unlabeled"],
            len(set(labels) - set(joined)),
        )


def read_labels(path: str, id_column: str, label_column: str) -> dict[bytes, Any]:
    """request id (bytes) -> label (int, float or bytes) from a CSV or Parquet file; ids must be unique."""
    import pyarrow as pa

    try:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(
                path, convert_options=pcsv.ConvertOptions(column_types={id_column: pa.string()})
            )
    except FileNotFoundError:
        raise DataError(f"labels file {path} does not exist") from None
    except pa.ArrowInvalid as error:
        raise DataError(f"{path}: cannot read it as {os.path.splitext(path)[1][1:]}: {error}") from None
    missing = [c for c in (id_column, label_column) if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: needs columns {id_column!r} and {label_column!r}; missing {missing}, has {table.column_names}"
        )
    ids = table.column(id_column).to_pylist()
    values = table.column(label_column).to_pylist()
    labels: dict[bytes, Any] = {}
    for row, (request_id, value) in enumerate(zip(ids, values, strict=True), start=2):
        if request_id is None or value is None:
            raise DataError(f"{path}: row {row} has an empty {id_column!r} or {label_column!r}")
        key = request_id if isinstance(request_id, bytes) else str(request_id).encode()
        if key in labels:
            raise DataError(
                f"{path}: row {row}: request id {key.decode(errors='replace')!r} has a second label"
            )
        labels[key] = value.encode() if isinstance(value, str) else value
    return labels


def logged_examples(serialized_log: bytes, path: str) -> list[Any]:
    """The tf.Examples of one serialized ``PredictionLog`` (see the module docstring for which)."""
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    try:
        record = prediction_log_pb2.PredictionLog.FromString(serialized_log)
    except Exception as error:  # protobuf's DecodeError
        raise DataError(f"{path}: a record is not a tensorflow.serving.PredictionLog: {error}") from None
    kind = record.WhichOneof("log_type")
    if kind in ("classify_log", "regress_log"):
        return _input_examples(getattr(record, kind).request.input)
    if kind == "multi_inference_log":
        return _input_examples(record.multi_inference_log.request.input)
    if kind == "predict_log":
        strings = [t for t in record.predict_log.request.inputs.values() if t.string_val]
        if len(strings) == 1:
            return [example_pb2.Example.FromString(value) for value in strings[0].string_val]
    return []


def _input_examples(request_input: Any) -> list[Any]:
    from tensorflow.core.example import example_pb2

    which = request_input.WhichOneof("kind")
    if which == "example_list":
        return list(request_input.example_list.examples)
    if which == "example_list_with_context":
        with_context = request_input.example_list_with_context
        prefix = with_context.context.SerializeToString()  # concatenation merges: the example's features win
        return [
            example_pb2.Example.FromString(prefix + example.SerializeToString())
            for example in with_context.examples
        ]
    return []


def _set_feature(feature: Any, value: Any) -> None:
    feature.Clear()
    if isinstance(value, bool) or isinstance(value, int):
        feature.int64_list.value.append(int(value))
    elif isinstance(value, float):
        feature.float_list.value.append(value)
    else:
        feature.bytes_list.value.append(value)


class _JoinedRequests(Reader):
    """The joined examples as one block, hash-split by request id (not by record bytes), so a
    request lands in the same split whatever its features or label."""

    columnar = False

    def __init__(self, ids: list[bytes], records: list[bytes]):
        self.ids, self.records = ids, records

    def blocks(self) -> Iterator[Block]:
        yield Block("request logs", "logged", None)

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        from mlpipe.io.examples import record_fingerprints

        return encode_rows(block, plan, None, self.records, lambda: record_fingerprints(self.ids))
