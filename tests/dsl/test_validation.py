"""Definition errors are caught when the pipeline is built, with messages that name the fix."""

from __future__ import annotations

import pytest

from mlpipe import Component, ComponentSpec, InputArtifact, OutputArtifact, Parameter, Pipeline, component
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR
from mlpipe.types import Examples, Model, Schema


@component
def make_examples(examples: OutputArtifact[Examples], n: Parameter[int] = 3, tag: Parameter[str] = "x"):
    pass


@component
def train(examples: InputArtifact[Examples], model: OutputArtifact[Model], schema: InputArtifact[Schema] = None,
          config: Parameter[dict] = None):  # fmt: skip
    pass


class Noop(Component):
    SPEC = ComponentSpec(parameters={"ratio": float})

    @staticmethod
    def execute(ctx):
        pass


def test_duplicate_ids_name_the_id_and_the_fix(tmp_path):
    a, b = make_examples(), make_examples()
    with pytest.raises(DefinitionError, match=r"two nodes have the id 'make_examples'.*with_id"):
        Pipeline("p", tmp_path, [a, b])
    Pipeline("p", tmp_path, [a, b.with_id("make_examples_2")])  # fixed


def test_cycle_through_after_is_reported_with_its_nodes(tmp_path):
    a = make_examples()
    t = train(examples=a.outputs["examples"])
    a.after(t)
    with pytest.raises(DefinitionError, match=r"cycle among nodes \['make_examples', 'train'\]"):
        Pipeline("p", tmp_path, [a, t])


def test_missing_upstream_component(tmp_path):
    a = make_examples()
    t = train(examples=a.outputs["examples"])
    with pytest.raises(
        DefinitionError, match=r"node 'train' depends on node 'make_examples', which is not in"
    ):
        Pipeline("p", tmp_path, [t])


def test_channel_type_mismatch_names_node_input_and_types():
    m = train(examples=make_examples().outputs["examples"])
    with pytest.raises(
        DefinitionError, match=r"train: input 'examples' expects Examples, but .*carries Model"
    ):
        train(examples=m.outputs["model"])


def test_unknown_and_mistyped_parameters():
    with pytest.raises(
        DefinitionError, match=r"make_examples: unknown argument\(s\) \['rows'\]; it accepts \['n', 'tag'\]"
    ):
        make_examples(rows=3)
    with pytest.raises(DefinitionError, match=r"parameter 'n' must be int, got str '3'"):
        make_examples(n="3")
    with pytest.raises(DefinitionError, match=r"parameter 'n' must be int, got bool"):
        make_examples(n=True)
    with pytest.raises(DefinitionError, match=r"Noop: parameter 'ratio' must be float, got str"):
        Noop(ratio="high")
    assert Noop(ratio=1).parameters == {"ratio": 1.0}  # ints widen to float


def test_required_input_and_parameter():
    with pytest.raises(DefinitionError, match=r"train: input 'examples' \(Examples\) is required"):
        train()
    with pytest.raises(DefinitionError, match=r"Noop: parameter 'ratio' \(float\) is required"):
        Noop()


def test_non_channel_input_is_explained():
    with pytest.raises(
        DefinitionError, match=r"input 'examples' must be a channel such as other_component.outputs"
    ):
        train(examples="/data/examples")


@pytest.mark.parametrize("name", ["", "has space", "-lead", "x" * 64, "a/b"])
def test_bad_pipeline_names(tmp_path, name):
    with pytest.raises(DefinitionError, match=r"pipeline name .* is invalid"):
        Pipeline(name, tmp_path, [make_examples()])


def test_component_function_without_annotations_is_rejected():
    with pytest.raises(DefinitionError, match=r"argument 'x' needs an annotation"):

        @component
        def bad(x):
            pass


def test_compile_round_trips_through_json(tmp_path):
    a = make_examples(n=7)
    t = train(examples=a.outputs["examples"], config={"lr": 0.1})
    ir = Pipeline("p", tmp_path / "root", [t, a]).compile()
    assert [n.id for n in ir.nodes] == ["make_examples", "train"]  # topological, whatever the list order
    path = tmp_path / "ir.json"
    ir.save(path)
    loaded = PipelineIR.load(path)
    assert loaded == ir
    node = loaded.node("train")
    assert node.parameters == {"config": {"lr": 0.1}}
    assert node.inputs["examples"].producer == "make_examples" and node.inputs["examples"].type == "Examples"
    assert node.outputs == {"model": "Model"}
    assert loaded.metadata == {"kind": "sqlite", "path": str(tmp_path / "metadata.sqlite"), "port": 3306}
    with pytest.raises(DefinitionError, match="has no node 'nope'; nodes: make_examples, train"):
        loaded.node("nope")
