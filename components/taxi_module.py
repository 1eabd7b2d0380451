"""Module code of the Chicago taxi demo: predict whether a trip's tip exceeds 20% of its fare.

mlpipe's Transform calls ``preprocessing_fn``, its Trainer ``run_fn`` and its Tuner ``tuner_fn``,
with TFX's contracts (``fn_args`` field names, ``TunerFnResult``), so TFX users read it as usual.

The served model takes serialized tf.Examples of *raw* features (signature ``serving_default``,
input ``examples``) and applies the Transform graph itself, so clients, the Evaluator and
BulkInferrer never re-implement preprocessing. ``transform_features`` returns the transformed
features including the label, for TFMA's ``preprocessing_function_names``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

DENSE_FLOAT_FEATURES = ["trip_miles", "fare", "trip_seconds"]
BUCKET_FEATURES = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
FEATURE_BUCKET_COUNT = 10
# Integer codes with a known small range: one-hot by value (out-of-range values go to an extra slot).
IDENTITY_FEATURES = {"trip_start_hour": 24, "trip_start_day": 8, "trip_start_month": 13}
# Strings and large integer codes: a vocabulary of the most frequent values plus OOV buckets.
VOCAB_FEATURES = [
    "payment_type",
    "company",
    "pickup_census_tract",
    "dropoff_census_tract",
    "pickup_community_area",
    "dropoff_community_area",
]
VOCAB_SIZE = 1000
OOV_SIZE = 10

RAW_LABEL_KEYS = ["tips"]  # raw columns a serving request does not carry
LABEL_KEY = "big_tipper"
BATCH_SIZE = 64


def _fill_in_missing(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Densify a feature to shape [batch], with 0 / '' where a row has no value.

    Features SchemaGen did not see in every row are sparse; the model needs one value per row.
    """
    if not isinstance(x, tf.sparse.SparseTensor):
        return tf.reshape(x, [-1]) if x.shape.rank == 2 else x
    default = "" if x.dtype == tf.string else 0
    dense = tf.sparse.to_dense(
        tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
    )
    return tf.squeeze(dense, axis=1)


def _as_float(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def preprocessing_fn(inputs: dict[str, Any]) -> dict[str, tf.Tensor]:
    """TFT preprocessing: z-scores, buckets, one-hot codes, vocabularies, and the label."""
    outputs: dict[str, tf.Tensor] = {}
    for key in DENSE_FLOAT_FEATURES:
        outputs[key] = tft.scale_to_z_score(_as_float(_fill_in_missing(inputs[key])))
    for key in BUCKET_FEATURES:
        outputs[key] = tft.bucketize(_as_float(_fill_in_missing(inputs[key])), FEATURE_BUCKET_COUNT)
    for key, size in IDENTITY_FEATURES.items():
        value = tf.cast(_fill_in_missing(inputs[key]), tf.int64)
        outputs[key] = tf.where((value >= 0) & (value < size), value, tf.constant(size, tf.int64))
    for key in VOCAB_FEATURES:
        value = _fill_in_missing(inputs[key])
        if value.dtype != tf.string:
            value = tf.strings.as_string(value)
        outputs[key] = tft.compute_and_apply_vocabulary(
            value, top_k=VOCAB_SIZE, num_oov_buckets=OOV_SIZE, vocab_filename=key
        )
    fare = _as_float(_fill_in_missing(inputs["fare"]))
    tips = _as_float(_fill_in_missing(inputs["tips"]))
    outputs[LABEL_KEY] = tf.cast(tips > 0.2 * fare, tf.int64)
    return outputs


def _categorical_sizes(tf_transform_output: tft.TFTransformOutput) -> dict[str, int]:
    """Number of distinct codes of each categorical transformed feature (one-hot / embedding width)."""
    sizes = {key: FEATURE_BUCKET_COUNT for key in BUCKET_FEATURES}
    sizes.update({key: size + 1 for key, size in IDENTITY_FEATURES.items()})
    for key in VOCAB_FEATURES:
        sizes[key] = tf_transform_output.vocabulary_size_by_name(key) + OOV_SIZE
    return sizes


def build_keras_model(
    categorical_sizes: dict[str, int], first_dnn_layer_size: int = 100, num_dnn_layers: int = 3,
    learning_rate: float = 1e-3,
) -> tf.keras.Model:  # fmt: skip
    """Wide (one-hot of every categorical) and deep (floats + embeddings) model with one sigmoid output.

    Every layer is named: Keras 2 numbers unnamed layers with a process-wide counter that is not
    thread-safe, and mlpipe may build a Trainer's and a Tuner's model in parallel threads.
    """
    layers = tf.keras.layers
    inputs = {key: layers.Input(shape=(1,), name=key, dtype=tf.float32) for key in DENSE_FLOAT_FEATURES}
    inputs.update({key: layers.Input(shape=(1,), name=key, dtype=tf.int64) for key in categorical_sizes})
    one_hots = [
        layers.CategoryEncoding(num_tokens=size, output_mode="one_hot", name=f"{key}_one_hot")(inputs[key])
        for key, size in categorical_sizes.items()
    ]
    wide = layers.concatenate(one_hots, name="wide")
    embeddings = [
        layers.Flatten(name=f"{key}_flat")(
            layers.Embedding(size, min(8, size), name=f"{key}_embedding")(inputs[key])
        )
        for key, size in categorical_sizes.items()
    ]
    deep = layers.concatenate([inputs[key] for key in DENSE_FLOAT_FEATURES] + embeddings, name="deep_inputs")
    for i in range(num_dnn_layers):
        units = max(2, int(first_dnn_layer_size * 0.7**i))
        deep = layers.Dense(units, activation="relu", name=f"dnn_{i}")(deep)
    combined = layers.concatenate([wide, deep], name="wide_and_deep")
    output = layers.Dense(1, activation="sigmoid", name="big_tipper_probability")(combined)
    return _compiled(inputs, output, learning_rate)


def build_linear_model(categorical_sizes: dict[str, int], learning_rate: float = 1e-2) -> tf.keras.Model:
    """A logistic regression on the same features: the floats and a one-hot of every categorical.

    The second candidate of ``pipelines/taxi_two_models.py``: cheaper to train and serve than the
    wide-and-deep model, and the Evaluator decides whether it is good enough to be the one pushed.
    """
    layers = tf.keras.layers
    inputs = {key: layers.Input(shape=(1,), name=key, dtype=tf.float32) for key in DENSE_FLOAT_FEATURES}
    inputs.update({key: layers.Input(shape=(1,), name=key, dtype=tf.int64) for key in categorical_sizes})
    one_hots = [
        layers.CategoryEncoding(num_tokens=size, output_mode="one_hot", name=f"{key}_one_hot")(inputs[key])
        for key, size in categorical_sizes.items()
    ]
    features = layers.concatenate(
        [inputs[key] for key in DENSE_FLOAT_FEATURES] + one_hots, name="linear_inputs"
    )
    output = layers.Dense(1, activation="sigmoid", name="big_tipper_probability")(features)
    return _compiled(inputs, output, learning_rate)


def _compiled(inputs: dict[str, Any], output: Any, learning_rate: float) -> tf.keras.Model:
    """Either candidate, trained the same way: binary cross-entropy with Adam."""
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=[tf.keras.metrics.BinaryAccuracy()],
    )
    return model


def _input_fn(
    file_pattern: list[str],
    data_accessor: Any,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of (transformed features, label), repeated: Keras counts steps, not epochs."""
    options = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_KEY, shuffle_seed=seed)
    dataset = data_accessor.tf_dataset_factory(
        file_pattern, options, tf_transform_output.transformed_metadata.schema
    )
    return dataset.repeat()


def _serving_signatures(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput) -> dict[str, Any]:
    """``serving_default`` (raw examples -> probabilities) and ``transform_features`` (-> features)."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    request_spec = {k: v for k, v in raw_spec.items() if k not in RAW_LABEL_KEYS}
    model_inputs = set(model.input_names)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        features = model.tft_layer(tf.io.parse_example(serialized, request_spec))
        return {"outputs": model({k: v for k, v in features.items() if k in model_inputs})}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {"serving_default": serve_examples, "transform_features": transform_features}


def _model_settings(fn_args: Any) -> dict[str, Any]:
    """Model size from the Tuner's best hyperparameters if given, else from custom_config."""
    config = dict(fn_args.custom_config or {})
    settings = {
        "first_dnn_layer_size": int(config.get("first_dnn_layer_size", 100)),
        "num_dnn_layers": int(config.get("num_dnn_layers", 3)),
        "learning_rate": float(config.get("learning_rate", 1e-3)),
    }
    if fn_args.hyperparameters:
        import keras_tuner

        best = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
        settings.update({k: v for k, v in best.values.items() if k in settings})
    return settings


def _build_model(fn_args: Any, tf_transform_output: tft.TFTransformOutput) -> tf.keras.Model:
    """``custom_config["model"]``: ``"wide_deep"`` (the default) or ``"linear"``."""
    kind = dict(fn_args.custom_config or {}).get("model", "wide_deep")
    sizes = _categorical_sizes(tf_transform_output)
    if kind == "wide_deep":
        return build_keras_model(sizes, **_model_settings(fn_args))
    if kind == "linear":
        return build_linear_model(sizes, float(dict(fn_args.custom_config).get("learning_rate", 1e-2)))
    raise ValueError(f'custom_config["model"] must be "wide_deep" or "linear", got {kind!r}')


def run_fn(fn_args: Any) -> None:
    """Train on transformed examples and save a serving model that accepts raw tf.Examples.

    Weights and shuffling are seeded (``custom_config["seed"]``, default 0) so that the same data
    and steps train the same model: a blessing should not depend on luck. ``custom_config["model"]``
    picks the architecture (``wide_deep`` or ``linear``).
    """
    config = dict(fn_args.custom_config or {})
    epochs = max(1, int(config.get("epochs", 1)))
    batch_size = int(config.get("batch_size", BATCH_SIZE))
    seed = int(config.get("seed", 0))
    tf.keras.utils.set_random_seed(seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, batch_size, seed)
    evaluation = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, batch_size, seed)
    model = _build_model(fn_args, tf_transform_output)
    if fn_args.base_model:
        _warm_start(model, fn_args.base_model)
    model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=max(1, fn_args.train_steps // epochs),
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )
    # save_traces=False: Keras then stores each layer's config instead of tracing every layer's
    # call functions again (saving 8 s -> 4 s, loading 3 s -> 1.5 s). Built-in layers only, so the
    # configs restore the model; the signatures, which serving and the Evaluator use, are traced.
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=_serving_signatures(model, tf_transform_output),
        save_traces=False,
    )


def _warm_start(model: tf.keras.Model, base_model_dir: str) -> None:
    """Start from the weights of ``fn_args.base_model`` (the last blessed model) layer by layer.

    Layers are matched by name (every layer is named); one whose weights changed shape — an
    embedding whose vocabulary grew with new data, a DNN resized by the Tuner — starts fresh, so
    warm start never fails a run, it only saves steps. The optimizer starts fresh too.
    """
    base = tf.keras.models.load_model(base_model_dir, compile=False)
    base_layers = {layer.name: layer for layer in base.layers}
    copied, fresh = [], []
    for layer in model.layers:
        source = base_layers.get(layer.name)
        weights = source.get_weights() if source is not None else []
        if not layer.get_weights():
            continue
        if [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied.append(layer.name)
        else:
            fresh.append(layer.name)
    print(f"warm start from {base_model_dir}: {len(copied)} layers copied, fresh: {fresh or 'none'}")


def tuner_fn(fn_args: Any) -> Any:
    """A random search over the DNN's size and learning rate, on the same data as run_fn."""
    import keras_tuner

    from mlpipe.components.tuner import TunerFnResult

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    sizes = _categorical_sizes(tf_transform_output)
    config = dict(fn_args.custom_config or {})

    def build(hp: Any) -> tf.keras.Model:
        return build_keras_model(
            sizes,
            first_dnn_layer_size=hp.Int("first_dnn_layer_size", 8, 128, step=8),
            num_dnn_layers=hp.Int("num_dnn_layers", 1, 3),
            learning_rate=hp.Choice("learning_rate", [1e-2, 1e-3]),
        )

    tuner = keras_tuner.RandomSearch(
        build,
        objective=keras_tuner.Objective("val_binary_accuracy", "max"),
        max_trials=int(config.get("max_trials", 3)),
        directory=fn_args.working_dir,
        project_name="taxi_tuning",
        overwrite=True,
    )
    batch_size = int(config.get("batch_size", BATCH_SIZE))
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, batch_size),
            "validation_data": _input_fn(
                fn_args.eval_files, fn_args.data_accessor, tf_transform_output, batch_size
            ),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 2,
        },
    )
