"""Resolver definitions and pipeline-file loading: what they build, and the exact errors they give."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

from mlpipe import OutputArtifact, Pipeline, component
from mlpipe.dsl import Resolver
from mlpipe.dsl.loader import load_pipeline
from mlpipe.errors import DefinitionError
from mlpipe.types import Examples, Model, ModelBlessing
from mlpipe.types.channel import Channel


@component
def produce(examples: OutputArtifact[Examples]):
    pass


def test_resolver_outputs_one_channel_per_keyword_and_reads_channels_as_inputs():
    upstream = produce()
    resolver = Resolver(strategy="latest_artifact", examples=upstream.outputs["examples"], model=Model)
    assert resolver.id == "Resolver"
    assert resolver.inputs == {"examples": upstream.outputs["examples"]}
    assert set(resolver.outputs) == {"examples", "model"}
    assert [(c.type, c.producer, c.key) for c in resolver.outputs.values()] == [
        (Examples, resolver, "examples"),
        (Model, resolver, "model"),
    ]
    assert all(isinstance(c, Channel) for c in resolver.outputs.values())
    assert resolver.parameters["strategy"] == "latest_artifact"
    assert set(resolver.parameters["types"]) == {"examples", "model"}
    assert resolver.parameters["types"]["model"] != resolver.parameters["types"]["examples"]


def test_latest_blessed_model_resolver():
    resolver = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing)
    assert resolver.inputs == {}
    assert {k: c.type for k, c in resolver.outputs.items()} == {
        "model": Model,
        "model_blessing": ModelBlessing,
    }


@pytest.mark.parametrize(
    "strategy, kwargs, message",
    [
        (
            "newest",
            {"model": Model},
            "Resolver: unknown strategy 'newest'; choose one of 'latest_artifact': the newest LIVE artifact "
            "for each output; 'latest_blessed_model': the newest Model whose ModelBlessing says blessed "
            "(outputs: model, model_blessing)",
        ),
        ("latest_artifact", {}, "Resolver: name at least one output, e.g. model=Model"),
        (
            "latest_artifact",
            {"model": "Model"},
            "Resolver: 'model' must be an artifact type or a channel, got 'Model'",
        ),
        (
            "latest_artifact",
            {"model": int},
            "Resolver: 'model' must be an artifact type or a channel, got <class 'int'>",
        ),
        (
            "latest_blessed_model",
            {"model": Model},
            "Resolver(strategy='latest_blessed_model') takes exactly model=Model, model_blessing=ModelBlessing",
        ),
        (
            "latest_blessed_model",
            {"model": Model, "model_blessing": ModelBlessing, "examples": Examples},
            "Resolver(strategy='latest_blessed_model') takes exactly model=Model, model_blessing=ModelBlessing",
        ),
    ],
)
def test_resolver_definition_errors(strategy, kwargs, message):
    with pytest.raises(DefinitionError) as info:
        Resolver(strategy=strategy, **kwargs)
    assert str(info.value) == message


def test_a_resolver_is_never_executed():
    with pytest.raises(AssertionError) as info:
        Resolver.execute(None)
    assert str(info.value) == "resolver nodes are resolved by the launcher, not executed"


# --- load_pipeline -------------------------------------------------------------------------------

PIPELINE_HEAD = """
    from mlpipe import OutputArtifact, Pipeline, component
    from mlpipe.types import Examples

    @component
    def rows(examples: OutputArtifact[Examples]):
        pass
"""


def _pipeline_file(tmp_path, body: str):
    """A pipeline file with a unique module name (loading imports it under that name)."""
    path = tmp_path / f"defs_{uuid.uuid4().hex}.py"
    path.write_text(textwrap.dedent(PIPELINE_HEAD) + textwrap.dedent(body))
    return path


def test_load_pipeline_calls_create_pipeline(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    path = _pipeline_file(
        tmp_path,
        f"""
        def create_pipeline():
            return Pipeline("made", {str(tmp_path / "root")!r}, [rows()])
        """,
    )
    pipeline = load_pipeline(path)
    assert isinstance(pipeline, Pipeline) and pipeline.name == "made"
    assert [c.id for c in pipeline.components] == ["rows"]
    # imported under the file's name, its folder on sys.path: other processes can import it alike
    component_class = type(pipeline.components[0])
    assert component_class.__module__ == path.stem
    assert sys.path[0] == str(tmp_path) and sys.modules[path.stem].create_pipeline
    load_pipeline(path)
    assert sys.path.count(str(tmp_path)) == 1  # loading again does not add the folder twice


def test_load_pipeline_of_a_file_python_cannot_import(tmp_path):
    path = tmp_path / "pipeline.txt"
    path.write_text("x = 1\n")
    with pytest.raises(DefinitionError) as info:
        load_pipeline(path)
    assert str(info.value) == f"{path} is not a Python file"


def test_load_pipeline_takes_the_one_pipeline_object(tmp_path):
    path = _pipeline_file(tmp_path, f'PIPELINE = Pipeline("single", {str(tmp_path / "root")!r}, [rows()])\n')
    assert load_pipeline(str(path)).name == "single"


@pytest.mark.parametrize(
    "body, message",
    [
        ("def create_pipeline():\n    return 3\n", "create_pipeline() returned int, not a Pipeline"),
        (
            "X = 1\n",
            "must define create_pipeline() or exactly one Pipeline object, or hand one pipeline to a runner under `if __name__ == '__main__':` (found 0)",
        ),
        (
            "A = Pipeline('a', 'r', [rows()])\nB = Pipeline('b', 'r', [rows()])\n",
            "must define create_pipeline() or exactly one Pipeline object, or hand one pipeline to a runner under `if __name__ == '__main__':` (found 2)",
        ),
    ],
)
def test_load_pipeline_errors_name_the_file_and_what_it_must_define(tmp_path, body, message):
    path = _pipeline_file(tmp_path, body)
    with pytest.raises(DefinitionError) as info:
        load_pipeline(path)
    separator = ": " if message.startswith("create_pipeline()") else " "
    assert str(info.value) == f"{path}{separator}{message}"


def test_load_pipeline_of_a_missing_file(tmp_path):
    with pytest.raises(DefinitionError) as info:
        load_pipeline(tmp_path / "nope.py")
    assert str(info.value) == f"pipeline file {tmp_path / 'nope.py'} does not exist"
