"""Canary / stable rollout end to end: labelled pushes from a pipeline, routing by label, promote, rollback.

Two SavedModels with different outputs (``linear`` with scale 1 and 2) are pushed by a Local-runner
pipeline's Pusher as ``stable`` then ``canary``; a running server follows ``models.config``. Every
answer by label is checked against the SavedModel it must come from, loaded directly with
``tf.saved_model.load`` (the oracle), not against the server's own output.
"""

from __future__ import annotations

import collections
import os
import re
import time

import numpy as np
import pytest

from mlpipe import OutputArtifact, Parameter, Pipeline, component
from mlpipe.types import Model
from tests.serving.conftest import http_call

pytestmark = pytest.mark.e2e
X = [[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]]


@component
def exported_model(source: Parameter[str], model: OutputArtifact[Model]):
    """A Model artifact holding an existing SavedModel as its Format-Serving directory."""
    import shutil

    shutil.copytree(source, os.path.join(model.uri, "Format-Serving"))


def push(root: str, serving_dir: str, source: str, label: str, promote: bool = False) -> int:
    """Run a two-node pipeline (model -> Pusher with ``version_label`` or ``promote``); returns the
    highest version in the serving directory."""
    from mlpipe.components.pusher import Pusher
    from mlpipe.orchestration.local import LocalDagRunner

    model = exported_model(source=source)
    pusher = Pusher(
        model=model.outputs["model"],
        push_destination={"filesystem": {"base_directory": os.path.join(serving_dir, "linear")}},
        version_label=label,
        promote=promote,
    )
    LocalDagRunner(progress=False).run(Pipeline("canary", root, [model, pusher]))
    versions = [int(name) for name in os.listdir(os.path.join(serving_dir, "linear")) if name.isdigit()]
    return max(versions)


def direct(saved_model: str) -> np.ndarray:
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    return next(iter(signature(x=tf.constant(X)).values())).numpy()


def predict(address: str, label: str) -> tuple[int, object]:
    return http_call(address, "POST", f"/v1/models/linear/labels/{label}:predict", {"instances": X})


def version_counts(address: str) -> dict[int, int]:
    """``:mlpipe:serving:version_request_count`` per version of ``linear``, from the metrics page."""
    code, text = http_call(address, "GET", "/monitoring/prometheus/metrics")
    assert code == 200
    pattern = r':mlpipe:serving:version_request_count\{model_name="linear",version="(\d+)"\} (\d+)'
    return collections.defaultdict(int, {int(v): int(n) for v, n in re.findall(pattern, text.decode())})


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_canary_push_routes_by_label_promote_flips_and_rollback_drops(tmp_path, saved_models):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from mlpipe.cli import main as mlpipe
    from mlpipe.serving import ModelServer
    from mlpipe.serving.config import read_model_config
    from mlpipe.serving.tensor_proto import to_tensor_proto

    serving = str(tmp_path / "serving")
    config = os.path.join(serving, "models.config")
    old_out, new_out = direct(saved_models["linear_v1"]), direct(saved_models["linear_v2"])
    assert not np.allclose(old_out, new_out)  # the two versions are distinguishable

    stable = push(str(tmp_path / "root"), serving, saved_models["linear_v1"], "stable")
    (entry,) = read_model_config(config)
    assert dict(entry.version_labels) == {"stable": stable}
    assert entry.version_policy.versions == (stable,)

    with ModelServer(
        read_model_config(config),
        poll_wait_seconds=0.2,
        allow_version_labels_for_unavailable_models=True,
        model_config_file=config,
        model_config_file_poll_wait_seconds=0.2,
    ) as server:
        address = server.rest_address
        code, body = predict(address, "stable")
        assert code == 200 and np.allclose(body["predictions"], old_out)

        canary = push(str(tmp_path / "root"), serving, saved_models["linear_v2"], "canary")
        assert canary > stable
        wait_until(lambda: predict(address, "canary")[0] == 200)
        assert np.allclose(predict(address, "canary")[1]["predictions"], new_out)
        assert np.allclose(predict(address, "stable")[1]["predictions"], old_out)  # stable still served
        # Live comparison: requests and model time per version, in the Prometheus metrics.
        before = version_counts(address)
        for _ in range(5):
            predict(address, "canary")
        for _ in range(3):
            predict(address, "stable")
        after = version_counts(address)
        assert after[canary] - before[canary] == 5 and after[stable] - before[stable] == 3
        code, meta = http_call(address, "GET", "/v1/models/linear/labels/canary/metadata")
        assert code == 200 and meta["model_spec"]["version"] == str(canary)

        with grpc.insecure_channel(server.grpc_address) as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "linear"
            request.model_spec.version_label = "canary"
            request.inputs["x"].CopyFrom(to_tensor_proto(np.array(X, dtype=np.float32)))
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert stub.Predict(request).model_spec.version.value == canary
            request.model_spec.version_label = "nope"
            with pytest.raises(grpc.RpcError) as refused:
                stub.Predict(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Unrecognized servable version label: nope" in refused.value.details()

        # A second canary while one is live is refused before anything is published.
        with pytest.raises(Exception, match="already points at version"):
            push(str(tmp_path / "root2"), serving, saved_models["linear_v1"], "canary")
        assert sorted(int(n) for n in os.listdir(os.path.join(serving, "linear")) if n.isdigit()) == [
            stable,
            canary,
        ]

        assert mlpipe(["promote", config, "linear"]) == 0
        wait_until(lambda: np.allclose(predict(address, "stable")[1].get("predictions", [[0, 0]]), new_out))
        code, body = predict(address, "canary")
        assert code == 400 and body["error"].startswith("Unrecognized servable version label: canary")
        wait_until(lambda: http_call(address, "GET", f"/v1/models/linear/versions/{stable}")[1]
                   ["model_version_status"][0]["state"] == "END")  # fmt: skip

        # Roll back a bad canary: the label and its version go, stable stays.
        bad = push(str(tmp_path / "root3"), serving, saved_models["linear_v1"], "canary")
        wait_until(lambda: predict(address, "canary")[0] == 200)
        assert np.allclose(predict(address, "canary")[1]["predictions"], old_out)
        assert mlpipe(["rollback", config, "linear"]) == 0
        wait_until(lambda: predict(address, "canary")[0] == 400)
        assert np.allclose(predict(address, "stable")[1]["predictions"], new_out)
        (entry,) = read_model_config(config)
        assert dict(entry.version_labels) == {"stable": canary} and entry.version_policy.versions == (canary,)
        assert bad not in entry.version_policy.versions


def test_labels_follow_tf_serving_rules_for_unloaded_versions(tmp_path, saved_models):
    """A label on a version that is not loaded: refused at start and on reload (FAILED_PRECONDITION,
    TF Serving's text) unless --allow_version_labels_for_unavailable_models, which still refuses to
    move an existing label onto an unloaded version."""
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    from mlpipe.errors import ServingError
    from mlpipe.serving import ModelServer, ServedModel, VersionPolicy
    from mlpipe.serving.config import models_to_proto
    from mlpipe.serving.layout import publish_version

    base = str(tmp_path / "linear")
    publish_version(saved_models["linear_v1"], base, 1)
    publish_version(saved_models["linear_v2"], base, 2)
    labelled = ServedModel("linear", base, VersionPolicy.specific(1), version_labels={"stable": 1})
    with pytest.raises(ServingError, match="Request to assign label to version 1 of model linear, which is "
                       "not currently available for inference"):  # fmt: skip
        ModelServer(labelled, poll_wait_seconds=0).start()

    with ModelServer(
        labelled, poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    ) as server:
        with grpc.insecure_channel(server.grpc_address) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)

            def reload(version_labels: dict[str, int], versions: tuple[int, ...]) -> grpc.RpcError | None:
                model = ServedModel(
                    "linear", base, VersionPolicy.specific(*versions), version_labels=version_labels
                )
                request = model_management_pb2.ReloadConfigRequest(config=models_to_proto([model]))
                try:
                    stub.HandleReloadConfigRequest(request)
                except grpc.RpcError as error:
                    return error
                return None

            moved = reload({"stable": 2}, (1, 2))  # moving a label onto version 2, not loaded yet
            assert moved is not None and moved.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert moved.details() == (
                "Request to assign label to version 2 of model linear, which is not currently available for inference"
            )
            assert (
                http_call(server.rest_address, "GET", "/v1/models/linear/labels/stable")[1][
                    "model_version_status"
                ][0]["version"]
                == "1"
            )  # nothing of the refused change applied
            assert reload({"stable": 1, "canary": 2}, (1, 2)) is None  # a new label may wait for its version
            code, body = http_call(
                server.rest_address, "POST", "/v1/models/linear/labels/canary:predict", {"instances": X}
            )
            assert code == 200 and np.allclose(body["predictions"], direct(saved_models["linear_v2"]))
            assert reload({"stable": 2}, (1, 2)) is None  # version 2 is loaded now: the label may move
            assert reload({"stable": 2, "next": 7}, (2,)) is None  # a new label on a version never loaded
            code, body = http_call(
                server.rest_address, "POST", "/v1/models/linear/labels/next:predict", {"instances": X}
            )
            assert code == 404 and body["error"].startswith(
                "Servable not found for request: Specific(linear, 7)"
            )


def test_pusher_promote_option_promotes_only_the_canary_it_holds(tmp_path, saved_models):
    """``Pusher(promote=True)`` in a pipeline: a model that is not the live canary promotes nothing; the
    canary's own model (the same SavedModel, file for file) moves stable to it."""
    from mlpipe.serving.config import read_model_config

    serving = str(tmp_path / "serving")
    config = os.path.join(serving, "models.config")
    stable = push(str(tmp_path / "a"), serving, saved_models["linear_v1"], "stable")
    canary = push(str(tmp_path / "b"), serving, saved_models["linear_v2"], "canary")

    push(str(tmp_path / "c"), serving, saved_models["linear_v1"], "", promote=True)  # not the canary's model
    (entry,) = read_model_config(config)
    assert dict(entry.version_labels) == {"stable": stable, "canary": canary}

    push(str(tmp_path / "b"), serving, saved_models["linear_v2"], "", promote=True)  # the canary's pipeline
    (entry,) = read_model_config(config)
    assert dict(entry.version_labels) == {"stable": canary} and entry.version_policy.versions == (canary,)
    versions = sorted(int(n) for n in os.listdir(os.path.join(serving, "linear")) if n.isdigit())
    assert versions == [stable, canary]  # promoting published nothing
