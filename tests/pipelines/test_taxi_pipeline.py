"""The demo taxi pipeline end to end on the local runner (issue acceptance, on a 3,000-trip sample)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import create_pipeline  # noqa: E402

from mlpipe.orchestration.local import LocalDagRunner  # noqa: E402
from mlpipe.orchestration.plan import plan_run  # noqa: E402
from tests.support.oracles import majority_class_rate, roc_auc  # noqa: E402

CONSTANT_MODULE = str(Path(__file__).parent / "constant_module.py")


def _raw_eval_examples(examples_uri: str) -> list[bytes]:
    from mlpipe.io.examples import read_examples

    return read_examples(os.path.join(examples_uri, "Split-eval"))


def _labels(records: list[bytes]):
    """Big tipper (tip > 20% of the fare, a missing value read as 0) from the raw fields, with numpy.

    In float32, as the label's definition computes it: a tip of exactly 20% (common) is a big tip
    or not depending on how 0.2 * fare rounds.
    """
    import numpy as np
    import tensorflow as tf

    def value(features, name: str) -> np.float32:
        values = features[name].float_list.value
        return np.float32(values[0] if values else 0.0)

    rows = [tf.train.Example.FromString(r).features.feature for r in records]
    return np.array([value(f, "tips") > np.float32(0.2) * value(f, "fare") for f in rows], dtype=int)


def _summary_rows(result, metric: str) -> list[list[str]]:
    """The Evaluator's overall rows for ``metric``: value, trivial, margin, threshold..., result.

    ``binary_accuracy`` has two: the Keras model's compiled metric and TFMA's ``BinaryAccuracy``.
    """
    uri = result.results["Evaluator"].outputs["evaluation"][0].uri
    rows = [line.split() for line in open(os.path.join(uri, "summary.txt")).read().splitlines()]
    return [row[2:] for row in rows if row[:2] == [metric, "Overall"]]


def baseline_id(result) -> int:
    return result.results["Trainer"].outputs["model"][0].id


@pytest.mark.e2e
def test_blessed_push_then_worse_model_not_pushed_then_fully_cached(small_data, tmp_path):
    import tensorflow as tf

    serving = tmp_path / "serving" / "taxi"

    def pipeline(train_steps: int):
        return create_pipeline(
            pipeline_root=str(tmp_path / "root"),
            serving_model_dir=str(serving),
            data_root=str(small_data),
            train_steps=train_steps,
            eval_steps=50,
        )

    runner = LocalDagRunner(progress=False)
    first = runner.run(pipeline(train_steps=400))
    (blessing,) = first.results["Evaluator"].outputs["blessing"]
    assert blessing.blessed and os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    (pushed,) = first.results["Pusher"].outputs["pushed_model"]
    assert pushed.get_custom_property("pushed") == 1
    versions = os.listdir(serving)
    assert versions == [str(pushed.get_custom_property("pushed_version"))]

    # the pushed SavedModel scores serialized RAW tf.Examples (Transform is inside the served graph),
    # and beats the trivial model by a margin on the eval split, by an oracle independent of TFMA
    served = tf.saved_model.load(str(serving / versions[0]))
    raw = _raw_eval_examples(first.results["CsvExampleGen"].outputs["examples"][0].uri)
    scores = served.signatures["serving_default"](examples=tf.constant(raw))["outputs"].numpy()[:, 0]
    labels = _labels(raw)
    majority = majority_class_rate(labels)
    auc = roc_auc(scores, labels)
    accuracy = float(((scores > 0.5) == labels).mean())
    assert auc >= 0.5 + 0.2 and accuracy >= majority + 0.05, (auc, accuracy, majority)
    # the Evaluator measured the model that was pushed, and logged the trivial baseline beside it
    assert first.results["Evaluator"].outputs["evaluation"][0].get_custom_property(
        "majority_class_rate"
    ) == pytest.approx(majority)
    ((value, trivial, margin, *threshold_and_result),) = _summary_rows(first, "auc")
    assert float(value) == pytest.approx(auc, abs=2e-3)  # TFMA's AUC is a 10,000-threshold estimate
    assert trivial == "0.5000" and float(margin) == pytest.approx(float(value) - 0.5, abs=1e-4)
    assert threshold_and_result == [">=", "0.65", "pass"]
    accuracy_rows = _summary_rows(first, "binary_accuracy")
    assert len(accuracy_rows) == 2
    for value, trivial, margin in accuracy_rows:
        assert float(value) == pytest.approx(accuracy, abs=1e-4)
        assert float(trivial) == pytest.approx(majority, abs=1e-4)
        assert float(margin) == pytest.approx(accuracy - majority, abs=2e-4)

    # rerun unchanged: the baseline is now the blessed model itself, which changes no verdict, so
    # the Evaluator and Pusher come from the cache too and nothing is pushed twice
    again = runner.run(pipeline(train_steps=400))
    assert {n: r.state for n, r in again.results.items() if r.state != "CACHED"} == {
        "latest_blessed_model_resolver": "COMPLETE"
    }
    assert again.results["latest_blessed_model_resolver"].outputs["model"][0].id == baseline_id(first)
    assert os.listdir(serving) == versions

    plan = {s.node_id: (s.action, s.why) for s in plan_run(pipeline(train_steps=1))}
    worse = runner.run(pipeline(train_steps=1))
    # the dry run said what would happen, and why
    assert {n: "CACHED" if a == "reuse" else "COMPLETE" for n, (a, _) in plan.items()} == {
        n: r.state for n, r in worse.results.items()
    }
    assert plan["latest_blessed_model_resolver"] == (
        "resolve",
        f"resolves model: {baseline_id(first)}, model_blessing: {blessing.id}",
    )
    assert plan["Trainer"] == ("execute", worse.results["Trainer"].cache_miss)
    assert plan["Evaluator"] == ("execute", "input 'model' will be new (Trainer executes)")
    (baseline,) = worse.results["latest_blessed_model_resolver"].outputs["model"]
    assert baseline.id == first.results["Trainer"].outputs["model"][0].id
    (blessing_2,) = worse.results["Evaluator"].outputs["blessing"]
    assert not blessing_2.blessed and os.path.exists(os.path.join(blessing_2.uri, "NOT_BLESSED"))
    assert blessing_2.get_custom_property("baseline_model_id") == baseline.id
    assert worse.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed") == 0
    assert os.listdir(serving) == versions  # nothing pushed: the serving directory is unchanged
    # the nodes that ran again say what changed since their last successful execution
    assert worse.results["Trainer"].cache_miss == (
        f"since execution {again.results['Trainer'].execution_id}: "
        'parameter \'train_args\' changed: {"num_steps": 400} -> {"num_steps": 1}'
    )
    new_model, old_model = worse.results["Trainer"].outputs["model"][0].id, baseline_id(first)
    assert f"input 'model': artifact {new_model} (was artifact {old_model})" in (
        worse.results["Evaluator"].cache_miss
    )

    cached = runner.run(pipeline(train_steps=1))
    executed = [
        n for n, r in cached.results.items() if r.state == "COMPLETE" and n != "latest_blessed_model_resolver"
    ]
    assert executed == []  # only the resolver looks again; every component comes from the cache


@pytest.mark.e2e
def test_a_model_that_learned_nothing_is_not_blessed_and_nothing_is_pushed(small_data, tmp_path):
    """The first run (no baseline, so only the value threshold judges) of a model that scores every
    trip 0.5: accuracy equals the majority-class rate (≈ 0.77), which an accuracy gate at 0.6 blessed."""
    import tensorflow as tf

    serving = tmp_path / "serving" / "taxi"
    pipeline = create_pipeline(
        pipeline_root=str(tmp_path / "root"), serving_model_dir=str(serving), data_root=str(small_data),
        module_file=CONSTANT_MODULE, train_steps=5, eval_steps=5,
    )  # fmt: skip
    result = LocalDagRunner(progress=False).run(pipeline)

    model_uri = result.results["Trainer"].outputs["model"][0].uri
    raw = _raw_eval_examples(result.results["CsvExampleGen"].outputs["examples"][0].uri)
    model = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
    scores = model.signatures["serving_default"](examples=tf.constant(raw[:50]))["outputs"].numpy()
    assert (scores == 0.5).all()  # the model is the useless one the test means
    labels = _labels(raw)
    majority = majority_class_rate(labels)
    assert majority > 0.6  # the old gate (accuracy >= 0.6) would have blessed it

    (blessing,) = result.results["Evaluator"].outputs["blessing"]
    assert blessing.get_custom_property("blessed") == 0
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    assert "baseline_model_id" not in blessing.custom_properties
    assert _summary_rows(result, "auc") == [["0.5000", "0.5000", "+0.0000", ">=", "0.65", "FAIL"]]
    accuracy_rows = _summary_rows(result, "binary_accuracy")
    assert len(accuracy_rows) == 2
    for value, trivial, margin in accuracy_rows:  # always "no": exactly the majority's accuracy
        assert float(value) == pytest.approx(majority, abs=1e-4)
        assert float(trivial) == pytest.approx(majority, abs=1e-4)
        assert margin in ("+0.0000", "-0.0000")
    (pushed,) = result.results["Pusher"].outputs["pushed_model"]
    assert pushed.get_custom_property("pushed") == 0
    assert not serving.exists() or os.listdir(serving) == []
