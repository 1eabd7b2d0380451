"""Module file of the taxi-style test pipeline, written as for TFX's native-Keras taxi example:
``preprocessing_fn`` (TFT), ``tuner_fn`` (KerasTuner) and ``run_fn`` (Keras), with TFX's imports."""

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx.components.tuner.component import TunerFnResult
from tfx_bsl.public import tfxio

_DENSE_FLOAT_FEATURE_KEYS = ["trip_miles", "fare", "trip_seconds"]
_BUCKET_FEATURE_KEYS = ["pickup_latitude", "pickup_longitude"]
_BUCKET_COUNT = 5
_VOCAB_FEATURE_KEYS = ["payment_type", "company"]
_VOCAB_SIZE = 100
_OOV_SIZE = 5
_HOUR_KEY = "trip_start_hour"
_FARE_KEY = "fare"
_RAW_LABEL_KEY = "tips"
_LABEL_KEY = "big_tipper"
_BATCH_SIZE = 32


def _fill_in_missing(x):
    """A [batch, 1] feature that may be sparse (empty CSV cells) as a dense [batch] tensor."""
    if not isinstance(x, tf.sparse.SparseTensor):
        return tf.squeeze(x, axis=1) if x.shape.rank == 2 else x
    default_value = "" if x.dtype == tf.string else 0
    dense = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value)
    return tf.squeeze(dense, axis=1)


def preprocessing_fn(inputs):
    outputs = {}
    for key in _DENSE_FLOAT_FEATURE_KEYS:
        outputs[key] = tft.scale_to_z_score(tf.cast(_fill_in_missing(inputs[key]), tf.float32))
    for key in _BUCKET_FEATURE_KEYS:
        outputs[key] = tft.bucketize(tf.cast(_fill_in_missing(inputs[key]), tf.float32), _BUCKET_COUNT)
    for key in _VOCAB_FEATURE_KEYS:
        outputs[key] = tft.compute_and_apply_vocabulary(
            _fill_in_missing(inputs[key]), top_k=_VOCAB_SIZE, num_oov_buckets=_OOV_SIZE, vocab_filename=key
        )
    outputs[_HOUR_KEY] = tf.clip_by_value(tf.cast(_fill_in_missing(inputs[_HOUR_KEY]), tf.int64), 0, 23)
    fare = tf.cast(_fill_in_missing(inputs[_FARE_KEY]), tf.float32)
    tips = tf.cast(_fill_in_missing(inputs[_RAW_LABEL_KEY]), tf.float32)
    outputs[_LABEL_KEY] = tf.cast(tips > 0.2 * fare, tf.int64)
    return outputs


def _input_fn(
    file_pattern: list[str], data_accessor: DataAccessor, tf_transform_output: tft.TFTransformOutput
) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=_BATCH_SIZE, label_key=_LABEL_KEY, shuffle_seed=1),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _categorical_sizes(tf_transform_output: tft.TFTransformOutput) -> dict[str, int]:
    sizes = {key: _BUCKET_COUNT for key in _BUCKET_FEATURE_KEYS}
    sizes.update(
        {key: tf_transform_output.vocabulary_size_by_name(key) + _OOV_SIZE for key in _VOCAB_FEATURE_KEYS}
    )
    sizes[_HOUR_KEY] = 24
    return sizes


def _build_keras_model(hparams: keras_tuner.HyperParameters, sizes: dict[str, int]) -> tf.keras.Model:
    inputs = {key: tf.keras.layers.Input(shape=(1,), name=key) for key in _DENSE_FLOAT_FEATURE_KEYS}
    inputs.update({key: tf.keras.layers.Input(shape=(1,), name=key, dtype=tf.int64) for key in sizes})
    encoded = [
        tf.keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(inputs[key])
        for key, size in sizes.items()
    ]
    x = tf.keras.layers.concatenate([inputs[key] for key in _DENSE_FLOAT_FEATURE_KEYS] + encoded)
    for _ in range(hparams.get("num_layers")):
        x = tf.keras.layers.Dense(hparams.get("units"), activation="relu")(x)
    output = tf.keras.layers.Dense(1, activation="sigmoid")(x)
    model = tf.keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(hparams.get("learning_rate")),
        loss="binary_crossentropy",
        metrics=[tf.keras.metrics.BinaryAccuracy()],
    )
    return model


def _search_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Int("num_layers", 1, 2)
    hp.Choice("units", [8, 16])
    hp.Choice("learning_rate", [1e-2, 3e-3])
    return hp


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    sizes = _categorical_sizes(tf_transform_output)
    tuner = keras_tuner.RandomSearch(
        lambda hp: _build_keras_model(hp, sizes),
        max_trials=2,
        hyperparameters=_search_space(),
        allow_new_entries=False,
        objective=keras_tuner.Objective("val_binary_accuracy", "max"),
        directory=fn_args.working_dir,
        project_name="taxi_tuning",
        seed=1,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
            "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
        },
    )


def _serving_signatures(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput):
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_feature_spec = tf_transform_output.raw_feature_spec()
    request_spec = {k: v for k, v in raw_feature_spec.items() if k != _RAW_LABEL_KEY}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        transformed = model.tft_layer(tf.io.parse_example(serialized_tf_examples, request_spec))
        transformed.pop(_LABEL_KEY, None)
        return {"outputs": model(transformed)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features_fn(serialized_tf_examples):
        return model.tft_layer(tf.io.parse_example(serialized_tf_examples, raw_feature_spec))

    return {"serving_default": serve_tf_examples_fn, "transform_features": transform_features_fn}


def run_fn(fn_args: FnArgs) -> None:
    tf.keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    if fn_args.hyperparameters:
        hparams = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
    else:
        hparams = _search_space()
    model = _build_keras_model(hparams, _categorical_sizes(tf_transform_output))
    model.fit(
        _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    model.save(
        fn_args.serving_model_dir,
        save_format="tf",
        signatures=_serving_signatures(model, tf_transform_output),
    )
