"""BulkInferrer's in-process streamed path against tfx_bsl's RunInference (the library it replaces).

The model is a ``tf.Module`` taking serialized tf.Examples, whose outputs cover every way a row
becomes a TensorProto (one float, a float per row without a trailing dimension, several floats
and doubles as ``tensor_content``, int64/int32, strings and an empty row), so the hand-built wire
bytes of :mod:`mlpipe.io.prediction_logs` and the per-row fallback are both compared with
tfx_bsl's own ``_PredictModelHandler._post_process`` on the very same numbers.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from mlpipe.components.bulk_inferrer import BulkInferrer, infer_in_process, run_inference
from mlpipe.types import Examples, InferenceResult, Model
from tests.components.test_evaluation_and_push import blessing, context, read_prediction_logs, write_examples

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def save_multi_output_model(model_uri: str) -> str:
    import tensorflow as tf

    class Multi(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            spec = {
                "x1": tf.io.FixedLenFeature([1], tf.float32),
                "x2": tf.io.FixedLenFeature([1], tf.float32),
                "group": tf.io.FixedLenFeature([1], tf.string),
            }
            f = tf.io.parse_example(examples, spec)
            x = tf.concat([f["x1"], f["x2"]], axis=1)
            return {
                "outputs": tf.sigmoid(x[:, :1] + x[:, 1:]),  # [n, 1] float32: float_val
                "score": x[:, 0] * 3.0,  # [n] float32
                "pair": x,  # [n, 2] float32: tensor_content
                "wide": tf.cast(tf.stack([x, 2 * x], axis=1), tf.float64),  # [n, 2, 2] float64
                "flag": tf.cast(x[:, 0] > 0, tf.int64),  # [n] int64: make_tensor_proto per row
                "counts": tf.cast(tf.round(x * 10), tf.int32),  # [n, 2] int32: tensor_content
                "group": f["group"],  # [n, 1] string ([n] strings fail in tfx_bsl: bytes have no dtype)
                "nothing": tf.zeros([tf.shape(x)[0], 0]),  # [n, 0]: an empty row
            }

    module = Multi()
    path = os.path.join(model_uri, "Format-Serving")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("multi")
    write_examples(str(root / "examples"), "eval", 150, seed=3)
    write_examples(str(root / "examples"), "train", 70, seed=4)
    return {"examples": str(root / "examples"), "model": str(root / "model"), "saved_model": save_multi_output_model(str(root / "model"))}  # fmt: skip


def test_encoded_logs_equal_tfx_bsl_post_process_exactly(multi):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    from tfx_bsl.beam import run_inference as tfx_run_inference
    from tfx_bsl.public.proto import model_spec_pb2

    from mlpipe.io.examples import read_examples
    from mlpipe.io.prediction_logs import PredictLogEncoder

    records = read_examples(os.path.join(multi["examples"], "Split-eval"))[:40]
    big = tf.train.Example.FromString(records[0])
    big.features.feature["blob"].bytes_list.value.append(b"x" * 20_000)  # 3-byte varint lengths
    records.append(big.SerializeToString())
    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(
            model_path=multi["saved_model"], signature_name=["serving_default"]
        )
    )
    handler = tfx_run_inference._PredictModelHandler(spec, None)
    session = handler.load_model()
    outputs = handler._run_inference(records, records, session)
    expected = handler._post_process(records, records, outputs)

    ours = PredictLogEncoder("examples", "serving_default").encode(records, outputs)
    assert len(ours) == len(expected) == 41
    parsed = [prediction_log_pb2.PredictionLog.FromString(b) for b in ours]
    assert parsed == expected  # protobuf equality: every field, floats bit for bit
    kinds = {alias: tf.make_ndarray(t).shape for alias, t in parsed[0].predict_log.response.outputs.items()}
    assert kinds == {
        "outputs": (1, 1), "score": (1,), "pair": (1, 2), "wide": (1, 2, 2),
        "flag": (1,), "counts": (1, 2), "group": (1, 1), "nothing": (1, 0),
    }  # fmt: skip


def test_varints_equal_protobufs():
    import numpy as np
    from google.protobuf.internal import encoder

    from mlpipe.io.wire import varint_array

    values = np.array([0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**35 + 5, 2**63 - 1])
    expected = [encoder._VarintBytes(int(v)) for v in values]
    assert varint_array(values).to_pylist() == expected


def _by_example(logs: list) -> dict[bytes, list]:
    grouped = collections.defaultdict(list)
    for log in logs:
        grouped[log.predict_log.request.inputs["examples"].string_val[0]].append(log)
    return grouped


@pytest.mark.e2e
def test_in_process_bulk_inferrer_equals_run_inference_on_beam(tmp_path, multi):
    import numpy as np
    import tensorflow as tf

    examples = Examples(uri=multi["examples"])
    examples.split_names = ["eval", "train"]
    ctx = context(
        tmp_path,
        {
            "examples": examples,
            "model": Model(uri=multi["model"]),
            "model_blessing": blessing(tmp_path, True),
        },
        {"inference_result": InferenceResult()},
        {"data_spec": {}},
    )
    BulkInferrer.execute(ctx)  # no beam_pipeline_args: in process
    ours_dir = ctx.outputs["inference_result"].uri
    assert sorted(os.listdir(ours_dir)) == ["prediction_logs-00000-of-00001.gz"]

    beam_dir = str(tmp_path / "beam")
    patterns = [os.path.join(multi["examples"], f"Split-{s}", "*.gz") for s in ("eval", "train")]
    run_inference(multi["saved_model"], patterns, beam_dir, ["--runner=FnApiRunner"])

    ours, theirs = _by_example(read_prediction_logs(ours_dir)), _by_example(read_prediction_logs(beam_dir))
    assert sum(map(len, ours.values())) == sum(map(len, theirs.values())) == 220
    assert ours.keys() == theirs.keys()
    for example, [log] in ours.items():
        [other] = theirs[example]
        assert log.predict_log.request == other.predict_log.request
        assert log.predict_log.response.model_spec == other.predict_log.response.model_spec
        mine, beam = log.predict_log.response.outputs, other.predict_log.response.outputs
        assert mine.keys() == beam.keys()
        for alias in mine:
            assert (mine[alias].dtype, mine[alias].tensor_shape) == (
                beam[alias].dtype,
                beam[alias].tensor_shape,
            )
            a, b = tf.make_ndarray(mine[alias]), tf.make_ndarray(beam[alias])
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-6)  # batch sizes differ between the paths
            else:
                assert a.tolist() == b.tolist()


def test_batches_cross_shard_boundaries_and_the_last_is_partial(tmp_path, multi):
    """12 records in shards of 7 and 5, batches of 5: batches 5, 5 (3 + 2 across the boundary), 2."""
    import tensorflow as tf

    from mlpipe.io.example_stream import iter_serialized_examples
    from mlpipe.io.examples import read_examples
    from mlpipe.io.examples import write_examples as write_split

    records = read_examples(os.path.join(multi["examples"], "Split-eval"))[:12]
    split_dir = str(tmp_path / "Split-eval")
    write_split(split_dir, records[:7], file_name="data_tfrecord-00000-of-00002.gz")
    write_split(split_dir, records[7:], file_name="data_tfrecord-00001-of-00002.gz")
    assert [len(b) for b in iter_serialized_examples(split_dir, 5)] == [5, 5, 2]

    out = tmp_path / "out"
    assert infer_in_process(multi["saved_model"], [split_dir], str(out), batch_records=5) == 12
    logs = read_prediction_logs(str(out))
    assert [log.predict_log.request.inputs["examples"].string_val[0] for log in logs] == records  # in order
    model = tf.saved_model.load(multi["saved_model"]).signatures["serving_default"]
    for record, log in zip(records, logs, strict=True):  # each row's score is the model's on it alone
        alone = model(examples=tf.constant([record]))
        assert log.predict_log.response.outputs["score"].float_val[0] == pytest.approx(
            float(alone["score"][0])
        )
        assert (
            tf.make_ndarray(log.predict_log.response.outputs["pair"]).tolist()
            == alone["pair"].numpy().tolist()
        )


def test_empty_split_writes_an_empty_log_file(tmp_path, multi):
    from mlpipe.io.examples import write_examples as write_split

    split_dir = str(tmp_path / "Split-empty")
    write_split(split_dir, [])
    assert infer_in_process(multi["saved_model"], [split_dir], str(tmp_path / "out")) == 0
    assert read_prediction_logs(str(tmp_path / "out")) == []
    assert Path(tmp_path / "out" / "prediction_logs-00000-of-00001.gz").exists()


def save_regress_model(model_uri: str) -> str:
    """A TF1-style export whose ``serving_default`` is a *regress* signature (as Estimators write)."""
    import tensorflow as tf

    path = os.path.join(model_uri, "Format-Serving")
    with tf.compat.v1.Graph().as_default(), tf.compat.v1.Session() as session:
        examples = tf.compat.v1.placeholder(tf.string, [None], name="examples")
        features = tf.io.parse_example(examples, {"x1": tf.io.FixedLenFeature([1], tf.float32)})
        value = features["x1"] * 2.0 + 1.0
        signature = tf.compat.v1.saved_model.regression_signature_def(examples, value)
        builder = tf.compat.v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(
            session, [tf.saved_model.SERVING], signature_def_map={"serving_default": signature}
        )
        builder.save()
    return path


def test_a_regress_signature_goes_to_run_inference(tmp_path, multi):
    """Not a predict signature: the in-process path declines, and the component's output is what
    RunInference writes for it (RegressLogs), value = 2 * x1 + 1."""
    from mlpipe.io.examples import read_examples

    saved_model = save_regress_model(str(tmp_path / "regress"))
    assert (
        infer_in_process(saved_model, [os.path.join(multi["examples"], "Split-train")], str(tmp_path / "no"))
        is None
    )
    assert not (tmp_path / "no").exists()

    examples = Examples(uri=multi["examples"])
    examples.split_names = ["eval", "train"]
    ctx = context(
        tmp_path,
        {"examples": examples, "model": Model(uri=str(tmp_path / "regress"))},
        {"inference_result": InferenceResult()},
        {"data_spec": {"example_splits": ["train"]}},
    )
    BulkInferrer.execute(ctx)
    logs = read_prediction_logs(ctx.outputs["inference_result"].uri)
    assert len(logs) == 70
    import tensorflow as tf

    for log in logs:
        (example,) = log.regress_log.request.input.example_list.examples
        (result,) = log.regress_log.response.result.regressions
        x1 = example.features.feature["x1"].float_list.value[0]
        assert result.value == pytest.approx(2 * x1 + 1, rel=1e-6)
    requests = sorted(
        log.regress_log.request.input.example_list.examples[0].SerializeToString() for log in logs
    )
    originals = [
        tf.train.Example.FromString(r).SerializeToString()
        for r in read_examples(os.path.join(multi["examples"], "Split-train"))
    ]
    assert requests == sorted(originals)


def test_a_missing_split_is_a_data_error_naming_it(tmp_path, multi):
    from mlpipe.errors import DataError

    examples = Examples(uri=multi["examples"])
    examples.split_names = ["eval", "train"]
    ctx = context(
        tmp_path,
        {"examples": examples, "model": Model(uri=multi["model"])},
        {"inference_result": InferenceResult()},
        {"data_spec": {"example_splits": ["test"]}},
    )
    with pytest.raises(DataError, match="split 'test' not found.*splits \\['eval', 'train'\\]"):
        BulkInferrer.execute(ctx)
