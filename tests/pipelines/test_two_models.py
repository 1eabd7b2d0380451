"""Several models in one pipeline: the Evaluator pushes the candidate with the better AUC.

The oracle is each trained candidate's exact ROC AUC on the eval split, computed here from the
raw examples (label: tips > 20% of the fare, as the module defines it) and the candidate's served
scores (``tests/support/oracles.roc_auc``), not anything the pipeline reports. The test trains
both candidates briefly, then swaps their training steps so the other one is better.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.oracles import roc_auc

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import EVAL_CONFIG  # noqa: E402
from taxi_two_models import create_pipeline  # noqa: E402

from mlpipe.orchestration.local import LocalDagRunner  # noqa: E402

STRONG, WEAK = 150, 2
# The demo's metrics with a threshold every model passes (TFMA blesses nothing without one): both
# candidates are blessed, so the selection rule alone decides which one is pushed (the rule "best
# among the blessed" is tested in test_model_selection).
ANY_AUC = {
    **EVAL_CONFIG,
    "metrics_specs": [
        {
            "metrics": [
                {"class_name": "ExampleCount"},
                {"class_name": "BinaryAccuracy"},
                {"class_name": "AUC", "threshold": {"value_threshold": {"lower_bound": 0.0}}},
            ]
        }
    ],
}


def _labels_and_rows(examples_uri: str) -> tuple[np.ndarray, list[bytes]]:
    import tensorflow as tf

    from mlpipe.io.examples import read_examples

    raw = read_examples(os.path.join(examples_uri, "Split-eval"))
    labels = []
    for serialized in raw:
        features = tf.train.Example.FromString(serialized).features.feature
        tips = features["tips"].float_list.value or [0.0]
        fare = features["fare"].float_list.value or [0.0]
        labels.append(float(tips[0] > 0.2 * fare[0]))
    return np.array(labels), raw


def _auc(model_dir: str, labels: np.ndarray, raw: list[bytes]) -> float:
    import tensorflow as tf

    served = tf.saved_model.load(model_dir)
    scores = served.signatures["serving_default"](examples=tf.constant(raw))["outputs"].numpy().reshape(-1)
    return roc_auc(scores, labels)


@pytest.mark.e2e
def test_the_candidate_with_the_better_auc_is_pushed_and_swapping_them_swaps_the_push(small_data, tmp_path):
    runner = LocalDagRunner(progress=False)
    serving = tmp_path / "serving"

    def run(steps: dict[str, int]):
        pipeline = create_pipeline(
            pipeline_root=str(tmp_path / "root"),
            serving_model_dir=str(serving),
            data_root=str(small_data),
            train_steps=steps,
            eval_steps=10,
            eval_config=ANY_AUC,
        )
        return runner.run(pipeline)

    pushed_names = []
    for steps in ({"wide_deep": STRONG, "linear": WEAK}, {"wide_deep": WEAK, "linear": STRONG}):
        result = run(steps)
        examples = result.results["CsvExampleGen"].outputs["examples"][0].uri
        labels, raw = _labels_and_rows(examples)
        models = {kind: result.results[f"{kind}_trainer"].outputs["model"][0] for kind in steps}
        oracle = {
            kind: _auc(os.path.join(m.uri, "Format-Serving"), labels, raw) for kind, m in models.items()
        }
        better = max(oracle, key=oracle.__getitem__)
        assert abs(oracle["wide_deep"] - oracle["linear"]) > 0.02, oracle  # a real difference to detect

        evaluator = result.results["Evaluator"]
        blessing = evaluator.outputs["blessing"][0]
        selected = evaluator.outputs["model"][0]
        assert blessing.blessed
        assert blessing.get_custom_property("selected_candidate") == better, (
            oracle,
            blessing.custom_properties,
        )
        assert selected.get_custom_property("selected_model_id") == models[better].id
        # every candidate's name and metric are recorded, and agree with the oracle (TFMA's AUC is
        # a 10,000-threshold sum, the oracle exact)
        for kind in steps:
            assert blessing.get_custom_property(f"candidate_{kind}_auc") == pytest.approx(
                oracle[kind], abs=0.01
            )
            assert blessing.get_custom_property(f"candidate_{kind}_blessed") == 1
        evaluation = Path(evaluator.outputs["evaluation"][0].uri)
        candidates = (evaluation / "candidates.txt").read_text()
        assert f"selected: {better} (auc " in candidates
        assert all(f"\n{kind} " in candidates for kind in steps)  # the candidates table, one row each
        summary = (evaluation / "summary.txt").read_text().splitlines()
        assert summary[0].split()[:2] == ["model", "metric"]  # the metrics table names each row's model

        pushed = result.results["Pusher"].outputs["pushed_model"][0]
        assert pushed.get_custom_property("pushed") == 1
        destination = Path(pushed.get_custom_property("pushed_destination"))
        winner = Path(models[better].uri) / "Format-Serving"
        assert (destination / "saved_model.pb").read_bytes() == (winner / "saved_model.pb").read_bytes()
        assert _auc(str(destination), labels, raw) == pytest.approx(oracle[better], abs=1e-9)
        pushed_names.append(better)

    assert pushed_names == ["wide_deep", "linear"]
    assert len([p for p in os.listdir(serving) if p.isdigit()]) == 2
