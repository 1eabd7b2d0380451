"""Module file without Transform, as TFX's penguin "simple" example has: the feature spec comes
from the (imported) schema, and the model normalizes its raw inputs itself
(a Keras Normalization layer adapted to training batches)."""

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

_FEATURE_KEYS = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
_LABEL_KEY = "species"


def _input_fn(file_pattern: list[str], data_accessor: tfx.components.DataAccessor, schema: schema_pb2.Schema):
    return data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=20, label_key=_LABEL_KEY, shuffle_seed=1),
        schema,
    ).repeat()


def _build_keras_model(train_dataset: tf.data.Dataset) -> tf.keras.Model:
    normalize = tf.keras.layers.Normalization(axis=-1)
    normalize.adapt(train_dataset.take(10).map(lambda x, _: tf.concat([x[k] for k in _FEATURE_KEYS], axis=1)))
    inputs = [tf.keras.layers.Input(shape=(1,), name=key) for key in _FEATURE_KEYS]
    d = normalize(tf.keras.layers.concatenate(inputs))
    d = tf.keras.layers.Dense(8, activation="relu")(d)
    outputs = tf.keras.layers.Dense(3, activation="softmax")(d)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.05),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    tf.keras.utils.set_random_seed(0)
    schema = tfx.utils.io_utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
    train_dataset = _input_fn(fn_args.train_files, fn_args.data_accessor, schema)
    model = _build_keras_model(train_dataset)
    model.fit(
        train_dataset,
        steps_per_epoch=fn_args.train_steps,
        validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, schema),
        validation_steps=fn_args.eval_steps,
        verbose=2,
    )
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    feature_spec.pop(_LABEL_KEY)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        features = tf.io.parse_example(serialized_tf_examples, feature_spec)
        return {"outputs": model([features[key] for key in _FEATURE_KEYS])}

    model.save(
        fn_args.serving_model_dir, save_format="tf", signatures={"serving_default": serve_tf_examples_fn}
    )
