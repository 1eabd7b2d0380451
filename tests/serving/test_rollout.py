"""models.config edits of a rollout: push under a label, promote, roll back (no server, no TensorFlow)."""

from __future__ import annotations

import os
import threading

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from mlpipe import OutputArtifact, component
from mlpipe.errors import ServingError
from mlpipe.serving import rollout
from mlpipe.types import Model


def entry(config: str) -> model_server_config_pb2.ModelConfig:
    """The model's entry, parsed with the TF Serving proto itself (the oracle of what a server reads)."""
    with open(config) as f:
        parsed = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = parsed.model_config_list.config
    return model


def test_push_promote_rollback_keep_tf_serving_config_consistent(tmp_path):
    base = str(tmp_path / "serving" / "taxi")
    config = rollout.config_path_for(base)
    assert config == str(tmp_path / "serving" / "models.config")

    rollout.push_label(config, "taxi", base, 10, "stable")
    rollout.push_label(config, "taxi", base, 20, "canary")
    model = entry(config)
    assert dict(model.version_labels) == {"stable": 10, "canary": 20}
    assert list(model.model_version_policy.specific.versions) == [10, 20]
    assert model.base_path == os.path.abspath(base)

    with pytest.raises(
        ServingError, match=r"label 'canary' of model 'taxi' already points at version 20.*mlpipe promote"
    ):
        rollout.check_label_free(config, "taxi", "canary")

    assert rollout.promote(config, "taxi") == (10, 20)
    model = entry(config)
    assert dict(model.version_labels) == {"stable": 20}
    assert list(model.model_version_policy.specific.versions) == [20]

    rollout.push_label(config, "taxi", base, 30, "canary")
    assert rollout.rollback(config, "taxi") == 30
    assert dict(entry(config).version_labels) == {"stable": 20}
    with pytest.raises(ServingError, match="has no 'canary' label"):
        rollout.promote(config, "taxi")
    with pytest.raises(ServingError, match="only label"):
        rollout.rollback(config, "taxi", "stable")
    missing = str(tmp_path / "typo" / "models.config")
    with pytest.raises(ServingError, match="does not exist"):
        rollout.promote(missing, "taxi")
    assert not os.path.exists(os.path.dirname(missing))  # a typo creates nothing


def test_other_models_and_logging_config_survive_edits(tmp_path):
    from mlpipe.serving.config import RequestLogging, ServedModel, read_model_config, write_model_config

    config = str(tmp_path / "models.config")
    other = ServedModel("other", str(tmp_path / "other"))
    taxi = ServedModel(
        "taxi", str(tmp_path / "taxi"), logging=RequestLogging(str(tmp_path / "logs" / "taxi"), 0.5)
    )
    write_model_config([other, taxi], config)
    rollout.push_label(config, "taxi", str(tmp_path / "taxi"), 3, "stable")
    models = {m.name: m for m in read_model_config(config)}
    assert models["other"] == ServedModel("other", str(tmp_path / "other"))
    assert models["taxi"].logging == RequestLogging(str(tmp_path / "logs" / "taxi"), 0.5)
    with pytest.raises(ServingError, match="is served from"):
        rollout.push_label(config, "taxi", str(tmp_path / "elsewhere"), 4, "canary")


def test_concurrent_label_pushes_lose_no_edit(tmp_path):
    config = str(tmp_path / "models.config")
    rollout.push_label(config, "m0", str(tmp_path / "m0"), 1, "stable")
    threads = [
        threading.Thread(
            target=rollout.push_label, args=(config, f"m{i}", str(tmp_path / f"m{i}"), i, "stable")
        )
        for i in range(1, 9)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(config) as f:
        parsed = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    assert sorted(m.name for m in parsed.model_config_list.config) == [f"m{i}" for i in range(9)]


@component
def model_maker(model: OutputArtifact[Model]):
    """Never runs: gives the Pusher a model channel."""


def test_pusher_refuses_a_bad_label_at_definition():
    from mlpipe.components.pusher import Pusher
    from mlpipe.errors import DefinitionError

    with pytest.raises(DefinitionError, match=r"version_label 'can ary' must match"):
        Pusher(
            model=model_maker().outputs["model"],
            push_destination={"filesystem": {"base_directory": "/tmp/x/taxi"}},
            version_label="can ary",
        )
