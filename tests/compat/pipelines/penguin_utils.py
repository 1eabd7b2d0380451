"""Module file of the penguin-style test pipeline, written as for TFX: a TFT ``preprocessing_fn``
that z-scores every feature and a ``run_fn`` that trains a 3-class Keras model."""

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

_FEATURE_KEYS = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
_LABEL_KEY = "species"
_BATCH_SIZE = 20


def preprocessing_fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    outputs = {key: tft.scale_to_z_score(inputs[key]) for key in _FEATURE_KEYS}
    outputs[_LABEL_KEY] = inputs[_LABEL_KEY]
    return outputs


def _input_fn(
    file_pattern: list[str],
    data_accessor: tfx.components.DataAccessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=_LABEL_KEY, shuffle_seed=1),
        tf_transform_output.transformed_metadata.schema,
    ).repeat()


def _build_keras_model() -> tf.keras.Model:
    inputs = [tf.keras.layers.Input(shape=(1,), name=key) for key in _FEATURE_KEYS]
    d = tf.keras.layers.concatenate(inputs)
    d = tf.keras.layers.Dense(8, activation="relu")(d)
    outputs = tf.keras.layers.Dense(3, activation="softmax")(d)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.05),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def _serving_signature(model: tf.keras.Model, tf_transform_output: tft.TFTransformOutput):
    model.tft_layer = tf_transform_output.transform_features_layer()
    feature_spec = tf_transform_output.raw_feature_spec()
    feature_spec.pop(_LABEL_KEY)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        transformed = model.tft_layer(tf.io.parse_example(serialized_tf_examples, feature_spec))
        return {"outputs": model(transformed)}

    return serve_tf_examples_fn


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    tf.keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, _BATCH_SIZE)
    eval_dataset = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, _BATCH_SIZE)
    model = _build_keras_model()
    model.fit(
        train_dataset,
        steps_per_epoch=fn_args.train_steps,
        validation_data=eval_dataset,
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    signatures = {"serving_default": _serving_signature(model, tf_transform_output)}
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
