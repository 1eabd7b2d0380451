"""One Evaluator over several candidates: each is blessed on its own thresholds, only a blessed one
is selected, and when none is, nothing is pushed. Tiny logistic models on synthetic examples (the
taxi-sized selection test is tests/pipelines/test_two_models.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlpipe import Pipeline
from mlpipe.components.evaluator import Evaluator
from mlpipe.components.pusher import Pusher
from mlpipe.dsl import Resolver
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import Model, ModelBlessing
from tests.components.test_evaluation_and_push import (
    EVAL_CONFIG,
    synthetic_examples,
    tiny_schema,
    tiny_trainer,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def candidates_pipeline(root: Path, serving: Path, steps: dict[str, int], selection: dict) -> Pipeline:
    examples = synthetic_examples()
    schema = tiny_schema()
    trainers = {
        name: tiny_trainer(examples=examples.outputs["examples"], train_steps=n).with_id(f"{name}_trainer")
        for name, n in steps.items()
    }
    baseline = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing)
    evaluator = Evaluator(
        examples=examples.outputs["examples"],
        models={name: trainer.outputs["model"] for name, trainer in trainers.items()},
        model_selection=selection,
        baseline_model=baseline.outputs["model"],
        schema=schema.outputs["schema"],
        eval_config=EVAL_CONFIG,
    )
    pusher = Pusher(
        model=evaluator.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": str(serving)}},
    )
    return Pipeline(
        "candidates", str(root / "pipeline"), [examples, schema, *trainers.values(), baseline, evaluator, pusher],
        metadata=sqlite(root / "metadata.sqlite"),
    )  # fmt: skip


@pytest.mark.e2e
def test_only_a_blessed_candidate_is_selected_and_none_blessed_pushes_nothing(tmp_path):
    runner = LocalDagRunner(progress=False)
    serving = tmp_path / "serving"
    # "lower AUC is better" would pick the untrained model (AUC 0.5) if the rule looked past the
    # blessing; it misses the AUC >= 0.75 threshold, so the trained one is the only candidate left
    first = runner.run(
        candidates_pipeline(
            tmp_path, serving, {"trained": 20, "untrained": 0}, {"metric": "auc", "higher_is_better": False}
        )
    )
    blessing = first.results["Evaluator"].outputs["blessing"][0]
    assert blessing.blessed and blessing.get_custom_property("selected_candidate") == "trained"
    assert blessing.get_custom_property("candidate_untrained_blessed") == 0
    assert blessing.get_custom_property("candidate_untrained_auc") == pytest.approx(0.5, abs=1e-6)
    assert blessing.get_custom_property("candidate_trained_auc") > 0.9
    recorded = {c["name"]: c for c in json.loads(blessing.get_custom_property("candidates"))}
    assert "auc on Overall" in recorded["untrained"]["failures"] and recorded["trained"]["failures"] == ""
    trained_model = first.results["trained_trainer"].outputs["model"][0]
    assert first.results["Evaluator"].outputs["model"][0].get_custom_property("selected_model_id") == (
        trained_model.id
    )
    pushed = first.results["Pusher"].outputs["pushed_model"][0]
    assert pushed.get_custom_property("pushed") == 1
    versions = os.listdir(serving)

    second = runner.run(
        candidates_pipeline(tmp_path, serving, {"trained": 0, "untrained": 0}, {"metric": "auc"})
    )
    blessing = second.results["Evaluator"].outputs["blessing"][0]
    assert not blessing.blessed and blessing.get_custom_property("selected_candidate") == ""
    assert os.listdir(blessing.uri) == ["NOT_BLESSED"]
    candidates = Path(second.results["Evaluator"].outputs["evaluation"][0].uri, "candidates.txt").read_text()
    assert "no candidate is blessed: NOT BLESSED" in candidates
    assert second.results["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed") == 0
    assert os.listdir(serving) == versions
