"""ComponentSpec and ParameterSpec: which values a parameter takes (and as what), and the exact errors.

Expected values are written by hand from the rules in the docstrings (a bool is not an int, an int
is a float, a str names a module or function, a tuple is a list; None only where it is allowed).
"""

from __future__ import annotations

from typing import Optional

import pytest

from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.spec import REQUIRED, ComponentSpec, InputSpec, ParameterSpec, parameter_spec_from_annotation
from mlpipe.errors import DefinitionError
from mlpipe.types import Examples, Model


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        (int, 3, 3),
        (float, 2, 2.0),
        (float, 2.5, 2.5),
        (str, "a", "a"),
        (bool, False, False),
        (dict, {"a": 1}, {"a": 1}),
        (list, (1, 2), [1, 2]),
        (list, [1], [1]),
    ],
)
def test_a_fitting_value_is_returned_converted(kind, value, expected):
    checked = ParameterSpec(kind).check("node", "p", value)
    assert checked == expected and type(checked) is type(expected)


@pytest.mark.parametrize("kind", [ModuleFile, FunctionPath])
def test_a_string_names_a_module_file_or_function(kind):
    checked = ParameterSpec(kind).check("node", "p", "pkg.mod.fn")
    assert type(checked) is kind and checked == "pkg.mod.fn"


@pytest.mark.parametrize(
    "kind, value, message",
    [
        (int, True, "node: parameter 'p' must be int, got bool True"),
        (int, 2.0, "node: parameter 'p' must be int, got float 2.0"),
        (float, True, "node: parameter 'p' must be float, got bool True"),
        (float, "1", "node: parameter 'p' must be float, got str '1'"),
        (str, 1, "node: parameter 'p' must be str, got int 1"),
        (list, {1}, "node: parameter 'p' must be list, got set {1}"),
        (dict, None, "node: parameter 'p' must be dict, got NoneType None"),
        (ModuleFile, 3, "node: parameter 'p' must be ModuleFile, got int 3"),
    ],
)
def test_a_value_that_does_not_fit_names_node_parameter_type_and_value(kind, value, message):
    with pytest.raises(DefinitionError) as info:
        ParameterSpec(kind).check("node", "p", value)
    assert str(info.value) == message


def test_none_only_where_optional_or_the_default():
    assert ParameterSpec(int, optional=True).check("n", "p", None) is None
    assert ParameterSpec(dict, default=None).check("n", "p", None) is None
    with pytest.raises(DefinitionError, match="must be int, got NoneType None"):
        ParameterSpec(int, default=3).check("n", "p", None)


def test_required_is_no_default():
    assert ParameterSpec(int).required and ParameterSpec(int).default is REQUIRED
    assert not ParameterSpec(int, default=0).required
    assert not ParameterSpec(int, default=None).required
    assert repr(REQUIRED) == "REQUIRED"


def test_shorthands_become_specs():
    spec = ComponentSpec(inputs={"examples": Examples}, outputs={"model": Model}, parameters={"n": int})
    assert spec.inputs == {"examples": InputSpec(Examples)}
    assert spec.parameters == {"n": ParameterSpec(int)}
    optional = InputSpec(Examples, optional=True)
    assert ComponentSpec(inputs={"e": optional}).inputs["e"] is optional


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inputs": {"e": int}}, "input 'e' must be an Artifact subclass (e.g. Examples), got <class 'int'>"),
        ({"outputs": {"m": "Model"}}, "output 'm' must be an Artifact subclass (e.g. Examples), got 'Model'"),
        (
            {"parameters": {"p": set}},
            "parameter 'p' has type <class 'set'>; allowed: int, float, str, bool, dict, list, ModuleFile, FunctionPath",
        ),
        (
            {"inputs": {"x": Examples}, "outputs": {"x": Model}},
            "names used twice among inputs/outputs/parameters: ['x']",
        ),
        (
            {"inputs": {"x": Examples}, "parameters": {"x": int}},
            "names used twice among inputs/outputs/parameters: ['x']",
        ),
        (
            {"outputs": {"x": Model}, "parameters": {"x": int}},
            "names used twice among inputs/outputs/parameters: ['x']",
        ),
    ],
)
def test_malformed_specs_are_rejected_with_the_reason(kwargs, message):
    with pytest.raises(DefinitionError) as info:
        ComponentSpec(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "annotation, default, expected",
    [
        (int, 3, ParameterSpec(int, 3, False)),
        (Optional[int], None, ParameterSpec(int, None, True)),  # noqa: UP045 - the typing form is what users write
        (int | None, REQUIRED, ParameterSpec(int, REQUIRED, True)),
        (dict[str, int], REQUIRED, ParameterSpec(dict, REQUIRED, False)),
        (Optional[list[str]], None, ParameterSpec(list, None, True)),  # noqa: UP045
    ],
)
def test_parameter_spec_from_annotation(annotation, default, expected):
    assert parameter_spec_from_annotation("p", annotation, default) == expected


def test_only_optional_unions_are_parameters():
    with pytest.raises(DefinitionError) as info:
        parameter_spec_from_annotation("p", int | str, REQUIRED)
    assert str(info.value) == "parameter 'p': only Optional[X] unions are supported, got int | str"
