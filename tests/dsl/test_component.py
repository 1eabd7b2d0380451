"""@component and Component nodes: the spec a function makes, ids, ``after``, and the exact errors."""

from __future__ import annotations

import pytest

from mlpipe import InputArtifact, OutputArtifact, Parameter, component
from mlpipe.dsl.spec import REQUIRED, InputSpec, ParameterSpec
from mlpipe.errors import DefinitionError
from mlpipe.types import Examples, Model


def test_a_function_becomes_a_component_class_with_its_spec():
    @component(version="7")
    def train(
        examples: InputArtifact[Examples],
        model: OutputArtifact[Model],
        steps: Parameter[int],
        base: InputArtifact[Model] = None,
        rate: Parameter[float] = 0.1,
        note: Parameter[str | None] = None,
    ):
        """Trains."""

    assert train.__name__ == "train" and train.__doc__ == "Trains." and train.VERSION == "7"
    assert train.__qualname__ == train.FUNCTION.__qualname__ and train.__module__ == __name__
    assert train.__qualname__.endswith("<locals>.train")
    assert dict(train.SPEC.inputs) == {
        "examples": InputSpec(Examples),
        "base": InputSpec(Model, optional=True),
    }
    assert dict(train.SPEC.outputs) == {"model": Model}
    assert dict(train.SPEC.parameters) == {
        "steps": ParameterSpec(int, REQUIRED),
        "rate": ParameterSpec(float, 0.1),
        "note": ParameterSpec(str, None, optional=True),
    }
    assert component(train.FUNCTION).VERSION == "1"


def test_a_parameter_without_default_is_required():
    @component
    def scale(factor: Parameter[float]):
        pass

    with pytest.raises(DefinitionError) as info:
        scale()
    assert str(info.value) == "scale: parameter 'factor' (float) is required"
    assert scale(factor=2).parameters == {"factor": 2.0}


@pytest.mark.parametrize("node_id", ["a", "node_2", "a-b", "A9"])
def test_with_id_accepts_letters_digits_underscore_dash(node_id):
    @component
    def step():
        pass

    assert step().with_id(node_id).id == node_id


@pytest.mark.parametrize("node_id", ["", "a b", "a/b", "a.b", 3, None])
def test_with_id_rejects_other_ids(node_id):
    @component
    def step():
        pass

    with pytest.raises(DefinitionError) as info:
        step().with_id(node_id)
    assert str(info.value) == f"node id {node_id!r} must be letters, digits, '_' or '-'"


def test_after_takes_components_only():
    @component
    def step():
        pass

    first, second = step().with_id("first"), step().with_id("second")
    assert second.after(first).upstream_nodes == [first]
    with pytest.raises(DefinitionError) as info:
        second.after("first")
    assert str(info.value) == "second.after() takes components, got 'first'"
    assert repr(second) == "<step id='second'>"


def test_a_union_parameter_names_the_argument():
    with pytest.raises(DefinitionError) as info:

        @component
        def pick(choice: Parameter[int | str] = 1):
            pass

    assert str(info.value) == "parameter 'choice': only Optional[X] unions are supported, got int | str"
