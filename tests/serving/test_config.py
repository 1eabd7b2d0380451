"""models.config read and written as TF Serving's ModelServerConfig text proto (no TensorFlow needed)."""

from __future__ import annotations

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from mlpipe.errors import ServingError
from mlpipe.serving import (
    ServedModel,
    VersionPolicy,
    format_model_config,
    parse_model_config,
    read_model_config,
    write_model_config,
)

TF_SERVING_EXAMPLE = """
model_config_list {
  config {
    name: "taxi"
    base_path: "/models/taxi"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 42 versions: 43 } }
    version_labels { key: "stable" value: 42 }
    version_labels { key: "canary" value: 43 }
  }
  config {
    name: "iris"
    base_path: "/models/iris"
    model_platform: "tensorflow"
    model_version_policy { all {} }
  }
  config {
    name: "plain"
    base_path: "/models/plain"
  }
}
"""


def test_parses_tf_servings_documented_config():
    taxi, iris, plain = parse_model_config(TF_SERVING_EXAMPLE)
    assert taxi == ServedModel(
        "taxi", "/models/taxi", VersionPolicy.specific(42, 43), version_labels={"stable": 42, "canary": 43}
    )
    assert iris.version_policy == VersionPolicy.all()
    assert plain.version_policy == VersionPolicy.latest(1)


def test_written_config_is_a_model_server_config_proto_and_round_trips(tmp_path):
    models = [
        ServedModel("taxi", str(tmp_path / "taxi"), VersionPolicy.latest(2), version_labels={"stable": 3}),
        ServedModel("iris", str(tmp_path / "iris"), VersionPolicy.specific(5, 1)),
        ServedModel("all", str(tmp_path / "all"), VersionPolicy.all()),
    ]
    path = tmp_path / "conf" / "models.config"
    write_model_config(models, path)
    proto = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    first = proto.model_config_list.config[0]
    assert (first.name, first.base_path, first.model_platform) == (
        "taxi",
        str(tmp_path / "taxi"),
        "tensorflow",
    )
    assert first.model_version_policy.latest.num_versions == 2
    assert dict(first.version_labels) == {"stable": 3}
    assert list(proto.model_config_list.config[1].model_version_policy.specific.versions) == [1, 5]
    assert proto.model_config_list.config[2].model_version_policy.HasField("all")
    assert read_model_config(path) == models
    assert os.listdir(tmp_path / "conf") == ["models.config"]


def test_base_paths_are_written_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = format_model_config([ServedModel("taxi", "serving/taxi")])
    assert f'base_path: "{tmp_path}/serving/taxi"' in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 'a' base_path: '/a' } ", "not a text-format"),
        ("model_config_list { config { name: 'a' base_paths: '/a' } }", "base_paths"),
        ("model_config_list { config { name: 'a' base_path: '/a' model_platform: 'pytorch' } }", "pytorch"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }",
            "twice",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' version_labels { key: 'x-y' value: 1 } } }",
            "x-y",
        ),
        ("model_config_list { config { name: 'a/b' base_path: '/a' } }", "cannot be used in request paths"),
        ("model_config_list { config { name: 'a' } }", "empty base_path"),
        ("custom_model_config { }", "custom_model_config"),
    ],
)
def test_invalid_configs_name_the_problem(text, message):
    with pytest.raises(ServingError, match=message) as raised:
        parse_model_config(text, source="models.config")
    assert str(raised.value).startswith("models.config")


def test_reading_a_missing_file_names_it(tmp_path):
    with pytest.raises(ServingError, match="cannot read model config file .*nope.config"):
        read_model_config(tmp_path / "nope.config")


def test_version_policy_selects_from_disk():
    on_disk = [1, 3, 7, 9]
    assert VersionPolicy.latest(2).select(on_disk) == {7, 9}
    assert VersionPolicy.all().select(on_disk) == {1, 3, 7, 9}
    assert VersionPolicy.specific(3, 4).select(on_disk) == {3}
    with pytest.raises(ServingError):
        VersionPolicy.latest(0)
