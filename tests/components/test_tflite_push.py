"""TFLite models at the Pusher and the converter's definition, without TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlpipe.components.tflite import TFLiteConverter, TFLiteModel
from mlpipe.dsl.annotations import OutputArtifact
from mlpipe.dsl.component import component
from mlpipe.errors import DefinitionError
from mlpipe.types.standard import Examples, Model
from tests.components.test_evaluation_and_push import blessing, push


def fake_tflite_model(path: Path, content: bytes) -> TFLiteModel:
    (path / "Format-TFLite").mkdir(parents=True)
    (path / "Format-TFLite" / "model.tflite").write_bytes(content)
    return TFLiteModel(uri=str(path), id=7)


def test_pusher_publishes_a_tflite_model_as_a_numbered_version_with_one_file(tmp_path):
    base = tmp_path / "tflite"
    first = push(tmp_path / "p1", fake_tflite_model(tmp_path / "m1", b"TFL3 one"), base,
                 model_blessing=blessing(tmp_path / "b1", True, model_id=7))  # fmt: skip
    second = push(tmp_path / "p2", fake_tflite_model(tmp_path / "m2", b"TFL3 two"), base)

    versions = [first.get_custom_property("pushed_version"), second.get_custom_property("pushed_version")]
    assert int(versions[1]) > int(versions[0])
    assert sorted(os.listdir(base)) == sorted(versions)  # no staging directory left behind
    assert os.listdir(base / versions[0]) == ["model.tflite"]
    assert (base / versions[0] / "model.tflite").read_bytes() == b"TFL3 one"
    assert (base / versions[1] / "model.tflite").read_bytes() == b"TFL3 two"


def test_pusher_does_not_push_a_tflite_model_its_check_did_not_bless(tmp_path):
    base = tmp_path / "tflite"
    pushed = push(tmp_path / "p", fake_tflite_model(tmp_path / "m", b"TFL3"), base,
                  model_blessing=blessing(tmp_path / "b", False, model_id=7))  # fmt: skip
    assert pushed.get_custom_property("pushed") == 0
    assert not base.exists()


@component
def make_inputs(examples: OutputArtifact[Examples], model: OutputArtifact[Model]) -> None:
    pass


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"quantization": "int4"}, "quantization must be one of"),
        ({"tolerance": -1.0}, "tolerance must be >= 0"),
    ],
)
def test_converter_definition_errors(parameters, message):
    inputs = make_inputs()
    with pytest.raises(DefinitionError, match=message):
        TFLiteConverter(
            model=inputs.outputs["model"], examples=inputs.outputs["examples"], label_key="y", **parameters
        )


def test_a_tflite_model_is_a_model_of_its_own_type():
    assert issubclass(TFLiteModel, Model) and TFLiteModel.TYPE_NAME != Model.TYPE_NAME
