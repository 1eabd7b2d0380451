"""Resolver nodes: latest blessed model as a baseline across runs, latest artifact."""

from __future__ import annotations

import os

import pytest

from mlpipe import InputArtifact, OutputArtifact, Parameter, Pipeline, Resolver, component
from mlpipe.errors import DefinitionError
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import Examples, Model, ModelBlessing


@component
def train(model: OutputArtifact[Model], quality: Parameter[float] = 0.5):
    with open(os.path.join(model.uri, "quality"), "w") as f:
        f.write(str(quality))


def _quality(model) -> float:
    return float(open(os.path.join(model.uri, "quality")).read())


@component
def evaluate(
    model: InputArtifact[Model],
    blessing: OutputArtifact[ModelBlessing],
    baseline: InputArtifact[Model] = None,
):
    blessed = baseline is None or _quality(model) >= _quality(baseline)
    open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.set_custom_property("blessed", int(blessed))
    blessing.set_custom_property("current_model_id", model.id)
    if baseline is not None:
        blessing.set_custom_property("baseline_model_id", baseline.id)


def _pipeline(root, quality: float) -> Pipeline:
    t = train(quality=quality)
    r = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing).with_id(
        "baseline"
    )
    e = evaluate(model=t.outputs["model"], baseline=r.outputs["model"])
    return Pipeline("resolve", root, [t, r, e])


def _blessing(result):
    (b,) = result.results["evaluate"].outputs["blessing"]
    return b


def test_latest_blessed_model_becomes_the_baseline(tmp_path, caplog):
    runner = LocalDagRunner(progress=False)
    first = runner.run(_pipeline(tmp_path / "root", 0.8))
    assert first.results["baseline"].outputs == {"model": [], "model_blessing": []}
    assert _blessing(first).blessed and _blessing(first).get_custom_property("baseline_model_id") is None
    model_1 = first.results["train"].outputs["model"][0]

    worse = runner.run(_pipeline(tmp_path / "root", 0.5))
    assert [m.id for m in worse.results["baseline"].outputs["model"]] == [model_1.id]
    assert not _blessing(worse).blessed
    assert os.path.exists(os.path.join(_blessing(worse).uri, "NOT_BLESSED"))

    # the resolver's result and log name what it linked, under its own execution
    with caplog.at_level("INFO", logger="mlpipe"):
        better = runner.run(_pipeline(tmp_path / "root", 0.9))
    resolved = better.results["baseline"]
    blessing_1 = _blessing(first)
    assert (resolved.node_id, resolved.state) == ("baseline", "COMPLETE")
    assert 0 <= resolved.seconds < 60
    assert isinstance(resolved.execution_id, int)
    assert resolved.execution_id not in {r.execution_id for n, r in better.results.items() if n != "baseline"}
    assert (
        f"node baseline: resolved model=[{model_1.id}], model_blessing=[{blessing_1.id}] "
        f"(execution {resolved.execution_id})"
    ) in [r.getMessage() for r in caplog.records]

    assert [m.id for m in better.results["baseline"].outputs["model"]] == [
        model_1.id
    ]  # the worse one is not blessed
    assert _blessing(better).blessed
    model_3 = better.results["train"].outputs["model"][0]

    again = runner.run(_pipeline(tmp_path / "root", 0.9))
    assert [m.id for m in again.results["baseline"].outputs["model"]] == [model_3.id]
    assert again.state_of("train") == "CACHED"
    assert again.state_of("baseline") == "COMPLETE"  # resolvers always look again


@component
def make(examples: OutputArtifact[Examples], tag: Parameter[str] = "a"):
    open(os.path.join(examples.uri, tag), "w").close()


@component
def use(examples: InputArtifact[Examples], out: OutputArtifact[Examples]):
    open(os.path.join(out.uri, "from_" + os.listdir(examples.uri)[0]), "w").close()


def test_latest_artifact_by_type_and_by_channel(tmp_path):
    runner = LocalDagRunner(progress=False)
    for tag in ["a", "b"]:
        m = make(tag=tag)
        runner.run(Pipeline("latest", tmp_path / "root", [m]))
    m = make(tag="c")
    by_type = Resolver(strategy="latest_artifact", examples=Examples).with_id("by_type")
    u = use(examples=by_type.outputs["examples"])
    result = runner.run(Pipeline("latest", tmp_path / "root", [m, by_type, u]), only=["by_type", "use"])
    (out,) = result.results["use"].outputs["out"]
    assert os.listdir(out.uri) == ["from_b"]  # newest Examples recorded before this run

    by_channel = Resolver(strategy="latest_artifact", examples=m.outputs["examples"]).with_id("by_channel")
    result = runner.run(Pipeline("latest", tmp_path / "root", [m, by_channel]))
    (picked,) = result.results["by_channel"].outputs["examples"]
    assert os.listdir(picked.uri) == ["c"]


def test_resolver_definition_errors():
    with pytest.raises(DefinitionError, match="unknown strategy 'newest'; choose one of 'latest_artifact'"):
        Resolver(strategy="newest", model=Model)
    with pytest.raises(DefinitionError, match="takes exactly model=Model, model_blessing=ModelBlessing"):
        Resolver(strategy="latest_blessed_model", model=Model)
    with pytest.raises(DefinitionError, match="'model' must be an artifact type or a channel"):
        Resolver(strategy="latest_artifact", model="Model")
