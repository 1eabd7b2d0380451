"""The model_selection rule and the Evaluator's several-models definition, without TensorFlow."""

from __future__ import annotations

import json

import pytest

from mlpipe.components.evaluator import Evaluator
from mlpipe.components.model_selection import (
    CandidateResult,
    ModelSelection,
    candidates_table,
    record_candidates,
    select,
)
from mlpipe.dsl.annotations import InputArtifact, OutputArtifact
from mlpipe.dsl.component import component
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError
from mlpipe.types.standard import Examples, Model, ModelEvaluation


def _result(name: str, value: float, blessed: bool = True) -> CandidateResult:
    return CandidateResult(name=name, model_id=None, model_uri=f"/m/{name}", blessed=blessed, value=value)


def test_select_takes_the_best_blessed_candidate_not_the_best_overall():
    results = [_result("a", 0.80), _result("b", 0.95, blessed=False), _result("c", 0.85)]
    assert select(results, ModelSelection("auc")).name == "c"
    assert select(results, ModelSelection("loss", higher_is_better=False)).name == "a"


def test_select_breaks_ties_by_declared_order_and_returns_none_when_nothing_is_blessed():
    assert select([_result("a", 0.9), _result("b", 0.9)], ModelSelection("auc")).name == "a"
    assert select([_result("b", 0.9), _result("a", 0.9)], ModelSelection("auc")).name == "b"
    assert select([_result("a", 0.9, blessed=False)], ModelSelection("auc")) is None


def test_candidates_are_recorded_by_name_with_their_metric_and_verdict():
    class Recorder:
        custom_properties: dict = {}

        def set_custom_property(self, key, value):
            self.custom_properties[key] = value

    artifact = Recorder()
    results = [_result("wide_deep", 0.91), _result("linear", 0.88, blessed=False)]
    record_candidates(artifact, results, ModelSelection("auc"), "wide_deep")
    props = artifact.custom_properties
    assert props["selected_candidate"] == "wide_deep"
    assert props["candidate_wide_deep_auc"] == 0.91 and props["candidate_linear_auc"] == 0.88
    assert props["candidate_wide_deep_blessed"] == 1 and props["candidate_linear_blessed"] == 0
    assert [c["name"] for c in json.loads(props["candidates"])] == ["wide_deep", "linear"]
    table = candidates_table(results, ModelSelection("auc"), "wide_deep").splitlines()
    assert table[0].split() == ["candidate", "model", "id", "auc", "blessed", "selected"]
    assert table[1].split() == ["wide_deep", "0.9100", "yes", "<-"]
    assert table[2].split() == ["linear", "0.8800", "no"]


@component
def make_model(examples: InputArtifact[Examples], model: OutputArtifact[Model]) -> None:
    pass


@component
def make_examples(examples: OutputArtifact[Examples]) -> None:
    pass


@component
def read_evaluation(evaluation: InputArtifact[ModelEvaluation], model: InputArtifact[Model]) -> None:
    pass


def test_an_evaluator_with_candidates_wires_each_one_and_outputs_the_selected_model(tmp_path):
    examples = make_examples()
    first = make_model(examples=examples.outputs["examples"]).with_id("first")
    second = make_model(examples=examples.outputs["examples"]).with_id("second")
    evaluator = Evaluator(
        examples=examples.outputs["examples"],
        models={"wide_deep": first.outputs["model"], "linear": second.outputs["model"]},
        model_selection={"metric": "auc"},
        eval_config={},
    )
    after = read_evaluation(evaluation=evaluator.outputs["evaluation"], model=evaluator.outputs["model"])
    node = Pipeline("p", tmp_path, [examples, first, second, evaluator, after]).compile().node("Evaluator")
    assert {k: v.producer for k, v in node.inputs.items()} == {
        "examples": "make_examples", "candidate_wide_deep": "first", "candidate_linear": "second",
    }  # fmt: skip
    assert set(node.outputs) == {"evaluation", "blessing", "model"}
    assert node.parameters["candidates"] == ["wide_deep", "linear"]
    assert node.parameters["model_selection"] == {"metric": "auc", "higher_is_better": True}
    assert "model" not in Evaluator.SPEC.outputs  # a one-model Evaluator is TFX's, unchanged


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": {"a": "M"}, "model_selection": {"metric": "auc"}}, "two or more candidates"),
        ({"models": {"a": "M", "b": "M"}}, "needs model_selection"),
        ({"models": {"a": "M", "b-c": "M"}, "model_selection": {"metric": "auc"}}, "candidate name 'b-c'"),
        (
            {"models": {"a": "M", "b": "M"}, "model_selection": {"metric": "auc", "best": "max"}},
            "unknown key",
        ),
        ({"models": {"a": "M", "b": "M"}, "model_selection": {"higher_is_better": True}}, "'metric': 'auc'"),
        ({"model": "M", "model_selection": {"metric": "auc"}}, "instead of model="),
        ({"model": "M", "models": {"a": "M", "b": "M"}, "model_selection": {"metric": "auc"}}, "not both"),
    ],
)
def test_definition_errors_say_what_to_pass(kwargs, message):
    examples = make_examples()
    channel = make_model(examples=examples.outputs["examples"]).outputs["model"]
    resolved = {
        k: channel if v == "M" else ({n: channel for n in v} if k == "models" else v)
        for k, v in kwargs.items()
    }
    with pytest.raises(DefinitionError, match=message):
        Evaluator(examples=examples.outputs["examples"], eval_config={}, **resolved)
