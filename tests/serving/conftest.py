"""Serving fixtures: tiny SavedModels built once per worker, and one server shared by the tests.

Models (all saved with ``tf.saved_model.save``):
- ``linear``: a tf-keras Dense layer, ``x`` float[-1,3] -> ``y`` float[-1,2] = x @ (scale * ones) + [0.5, -0.5];
  v1 has scale 1, v2 scale 2; served with policy ``all`` and labels stable=1, canary=2.
- ``multi``: tf.Module; ``serving_default`` (a float[-1,2], b int64[-1]) -> total, name, raw_bytes;
  ``length`` (text string[-1]) -> length; ``scale`` (x float scalar) -> scaled.
- ``taxi``: TFX-style, every signature takes serialized tf.Examples (``examples``):
  ``serving_default`` -> output_0 [-1,1] probability; ``classes`` -> classes/scores; ``value`` -> outputs.
- ``strict``: signatures whose method_name is TF Serving's classify/regress (input ``inputs``).
- ``swap``: the linear model, latest policy; tests push versions into it while it is served.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import re
from typing import Any

import pytest

from mlpipe import _tf_env  # noqa: F401  (TF_USE_LEGACY_KERAS must be set before TensorFlow loads)

# TF Serving's default; a pushed version must be served within two of these.
POLL_SECONDS = 1.0


def build_linear(path: str, scale: float) -> None:
    import tensorflow as tf

    inputs = tf.keras.Input(shape=(3,), name="x")
    outputs = tf.keras.layers.Dense(
        2,
        name="y",
        kernel_initializer=tf.keras.initializers.Constant(scale),
        bias_initializer=tf.keras.initializers.Constant([0.5, -0.5]),
    )(inputs)
    tf.saved_model.save(tf.keras.Model(inputs, outputs), path)


def build_multi(path: str) -> None:
    import tensorflow as tf

    class Multi(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="a"),
                tf.TensorSpec([None], tf.int64, name="b"),
            ]
        )
        def serve(self, a, b):
            text = tf.strings.as_string(b)
            return {
                "total": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32),
                "name": tf.strings.join(["n", text]),
                "raw_bytes": text,
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def length(self, text):
            return {"length": tf.strings.length(text)}

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="x")])
        def scale(self, x):
            return {"scaled": x * 3.0}

    model = Multi()
    tf.saved_model.save(
        model, path, signatures={"serving_default": model.serve, "length": model.length, "scale": model.scale}
    )


def build_taxi(path: str) -> None:
    import tensorflow as tf

    examples = tf.TensorSpec([None], tf.string, name="examples")

    class Taxi(tf.Module):
        def __init__(self):
            super().__init__()
            self.weight = tf.Variable(0.5)

        def logit(self, serialized):
            features = tf.io.parse_example(
                serialized,
                {
                    "trip_miles": tf.io.FixedLenFeature([], tf.float32),
                    "hour": tf.io.FixedLenFeature([], tf.int64, default_value=0),
                    "company": tf.io.FixedLenFeature([], tf.string, default_value=""),
                },
            )
            company = tf.cast(tf.strings.length(features["company"]), tf.float32)
            return (
                features["trip_miles"] * self.weight
                + tf.cast(features["hour"], tf.float32) * 0.1
                - company * 0.05
            )

        @tf.function(input_signature=[examples])
        def serve(self, serialized):
            return {"output_0": tf.expand_dims(tf.sigmoid(self.logit(serialized)), 1)}

        @tf.function(input_signature=[examples])
        def classes(self, serialized):
            p = tf.sigmoid(self.logit(serialized))
            labels = tf.fill(tf.shape(p), "no"), tf.fill(tf.shape(p), "yes")
            return {"classes": tf.stack(labels, axis=1), "scores": tf.stack([1.0 - p, p], axis=1)}

        @tf.function(input_signature=[examples])
        def value(self, serialized):
            return {"outputs": self.logit(serialized)}

    model = Taxi()
    tf.saved_model.save(
        model,
        path,
        signatures={"serving_default": model.serve, "classes": model.classes, "value": model.value},
    )


def build_strict(path: str) -> None:
    """Signatures TF Serving itself would accept for Classify/Regress: method names set in the proto."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    inputs = tf.TensorSpec([None], tf.string, name="inputs")

    class Strict(tf.Module):
        @tf.function(input_signature=[inputs])
        def classify(self, serialized):
            n = tf.cast(tf.strings.length(serialized), tf.float32)
            labels = tf.fill(tf.shape(n), "short"), tf.fill(tf.shape(n), "long")
            return {"classes": tf.stack(labels, axis=1), "scores": tf.stack([1.0 / (1.0 + n), n], axis=1)}

        @tf.function(input_signature=[inputs])
        def regress(self, serialized):
            return {"outputs": tf.cast(tf.strings.length(serialized), tf.float32)}

    model = Strict()
    tf.saved_model.save(
        model, path, signatures={"tfs_classify": model.classify, "tfs_regress": model.regress}
    )
    pb = os.path.join(path, "saved_model.pb")
    with open(pb, "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    signatures = saved_model.meta_graphs[0].signature_def
    signatures["tfs_classify"].method_name = "tensorflow/serving/classify"
    signatures["tfs_regress"].method_name = "tensorflow/serving/regress"
    with open(pb, "wb") as f:
        f.write(saved_model.SerializeToString())


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory, worker_id) -> dict[str, str]:
    """Export directories (read-only; not in the serving layout) of every test model.

    Under xdist the workers share one set: the first builds it under a lock, the others reuse it.
    """
    if worker_id == "master":
        root = tmp_path_factory.mktemp("exports")
    else:
        root = tmp_path_factory.getbasetemp().parent / "serving-exports"
        root.mkdir(exist_ok=True)
    paths = {name: str(root / name) for name in ("linear_v1", "linear_v2", "multi", "taxi", "strict")}
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".built").exists():
            build_linear(paths["linear_v1"], 1.0)
            build_linear(paths["linear_v2"], 2.0)
            build_multi(paths["multi"])
            build_taxi(paths["taxi"])
            build_strict(paths["strict"])
            (root / ".built").touch()
    return paths


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory, saved_models) -> str:
    """The TF Serving layout: ``<root>/<model>/<version>/``."""
    from mlpipe.serving import publish_version

    root = str(tmp_path_factory.mktemp("serving"))
    publish_version(saved_models["linear_v1"], os.path.join(root, "linear"))
    publish_version(saved_models["linear_v2"], os.path.join(root, "linear"))
    for name in ("multi", "taxi", "strict"):
        publish_version(saved_models[name], os.path.join(root, name))
    publish_version(saved_models["linear_v1"], os.path.join(root, "swap"))
    return root


@pytest.fixture(scope="session")
def server(serving_root):
    """One running built-in server for the session, on free ports."""
    from mlpipe.serving import ModelServer, ServedModel, VersionPolicy

    models = [
        ServedModel(
            "linear",
            os.path.join(serving_root, "linear"),
            version_policy=VersionPolicy.all(),
            version_labels={"stable": 1, "canary": 2},
        ),
        ServedModel("multi", os.path.join(serving_root, "multi")),
        ServedModel("taxi", os.path.join(serving_root, "taxi")),
        ServedModel("strict", os.path.join(serving_root, "strict")),
        ServedModel("swap", os.path.join(serving_root, "swap")),
    ]
    with ModelServer(
        models, poll_wait_seconds=POLL_SECONDS, allow_version_labels_for_unavailable_models=True
    ) as running:
        yield running


def requests_counted(rest, model: str, status: str = "OK") -> int:
    """The server's Prometheus ``request_count`` for ``model`` with ``status`` (0 before the first)."""
    code, text = rest("GET", "/monitoring/prometheus/metrics")
    assert code == 200
    pattern = rf':tensorflow:serving:request_count\{{model_name="{model}",status="{status}"\}} (\d+)'
    match = re.search(pattern.encode(), text)
    return int(match.group(1)) if match else 0


def http_call(
    address: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One raw HTTP request on a fresh connection; the body is JSON-encoded unless bytes/str."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        content_type = response.getheader("Content-Type", "")
        return response.status, json.loads(data) if content_type.startswith(
            "application/json"
        ) and data else data
    finally:
        connection.close()


@pytest.fixture
def poll_seconds() -> float:
    """The shared server's --file_system_poll_wait_seconds."""
    return POLL_SECONDS


@pytest.fixture
def rest(server):
    """``rest(method, path, body=None, headers=None)`` -> (status, JSON or bytes) on the shared server."""

    def call(
        method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return http_call(server.rest_address, method, path, body, headers)

    return call


@pytest.fixture(scope="session")
def loaded(saved_models):
    """The SavedModels loaded in this process: the reference every server answer is compared with."""
    import tensorflow as tf

    return {name: tf.saved_model.load(path) for name, path in saved_models.items()}
