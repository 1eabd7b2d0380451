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


def _raw_eval_examples(examples_uri: str) -> list[bytes]:
    from mlpipe.io.examples import read_examples

    return read_examples(os.path.join(examples_uri, "Split-eval"))


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
    summary = open(
        os.path.join(first.results["Evaluator"].outputs["evaluation"][0].uri, "summary.txt")
    ).read()
    overall = [line.split() for line in summary.splitlines() if line.startswith("binary_accuracy  Overall")]
    assert float(overall[0][2]) >= 0.6
    (pushed,) = first.results["Pusher"].outputs["pushed_model"]
    assert pushed.get_custom_property("pushed") == 1
    versions = os.listdir(serving)
    assert versions == [str(pushed.get_custom_property("pushed_version"))]

    # the pushed SavedModel scores serialized RAW tf.Examples: Transform is inside the served graph
    served = tf.saved_model.load(str(serving / versions[0]))
    raw = _raw_eval_examples(first.results["CsvExampleGen"].outputs["examples"][0].uri)[:20]
    scores = served.signatures["serving_default"](examples=tf.constant(raw))["outputs"].numpy()
    assert scores.shape == (20, 1) and ((scores >= 0) & (scores <= 1)).all()

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
