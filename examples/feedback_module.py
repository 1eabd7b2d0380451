"""The feedback-loop demo's model: logistic regression on four taxi features, predicting ``big_tipper``.

Small on purpose (the demo and its test train it twice in seconds). The serving signature takes
serialized tf.Examples, as TFX models do, so a request can carry a ``request_id`` feature that the
model ignores and the request log keeps (``examples/feedback_loop.py``).
"""

from __future__ import annotations

from typing import Any

NUMERIC = {"trip_miles": "float", "fare": "float", "trip_seconds": "int", "trip_start_hour": "int"}
LABEL = "big_tipper"


def _feature_spec(with_label: bool) -> dict[str, Any]:
    import tensorflow as tf

    spec = {
        name: tf.io.FixedLenFeature([], tf.float32 if kind == "float" else tf.int64, default_value=0)
        for name, kind in NUMERIC.items()
    }
    if with_label:
        spec[LABEL] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def _matrix(features: dict[str, Any]) -> Any:
    import tensorflow as tf

    return tf.stack([tf.cast(features[name], tf.float32) for name in NUMERIC], axis=1)


def run_fn(fn_args: Any) -> None:
    import tensorflow as tf

    spec = _feature_spec(with_label=True)

    def dataset(files: list[str]) -> tf.data.Dataset:
        def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            features = tf.io.parse_example(serialized, spec)
            return _matrix(features), features[LABEL]

        paths = [path for pattern in files for path in tf.io.gfile.glob(pattern)]  # fn_args gives patterns
        return tf.data.TFRecordDataset(paths, compression_type="GZIP").batch(64).map(parse)

    train = dataset(fn_args.train_files)
    normalize = tf.keras.layers.Normalization()
    normalize.adapt(train.map(lambda x, _: x))
    model = tf.keras.Sequential([normalize, tf.keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    tf.keras.utils.set_random_seed(0)
    model.fit(train, epochs=int(fn_args.custom_config.get("epochs", 5)), verbose=0)
    _, accuracy = model.evaluate(dataset(fn_args.eval_files), verbose=0)
    print(f"eval accuracy {accuracy:.3f}")

    serving_spec = _feature_spec(with_label=False)

    class Served(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"probability": self.model(_matrix(tf.io.parse_example(serialized, serving_spec)))}

    served = Served()
    tf.saved_model.save(served, fn_args.serving_model_dir, signatures={"serving_default": served.serve})
