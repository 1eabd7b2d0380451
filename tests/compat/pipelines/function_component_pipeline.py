"""A TFX-style pipeline with a Python-function component: an imported schema (Importer), a
Trainer without Transform, an ``accuracy_gate`` @component that scores the eval split, blesses
the model and returns values (OutputDict), and a Pusher that runs only if the gate's accuracy
holds (Cond)."""

import glob
import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Examples, Model, ModelBlessing

_pipeline_name = "function_component_compat"
_home = os.environ.get("TFX_COMPAT_HOME", os.path.join(os.path.expanduser("~"), "tfx_compat"))
_data_root = os.environ.get("TFX_COMPAT_DATA", os.path.join(_home, "data"))
_schema_dir = os.environ.get("TFX_COMPAT_SCHEMA", os.path.join(_home, "schema"))
_module_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "penguin_trainer_utils.py")
_serving_model_dir = os.path.join(_home, "serving_model", _pipeline_name)
_pipeline_root = os.path.join(_home, "pipelines", _pipeline_name)
_metadata_path = os.path.join(_home, "metadata", _pipeline_name, "metadata.db")


@tfx.dsl.components.component
def accuracy_gate(
    model: tfx.dsl.components.InputArtifact[Model],
    examples: tfx.dsl.components.InputArtifact[Examples],
    blessing: tfx.dsl.components.OutputArtifact[ModelBlessing],
    min_accuracy: tfx.dsl.components.Parameter[float] = 0.8,
    label_key: str = "species",
) -> tfx.dsl.components.OutputDict(accuracy=float, examples_scored=int):
    """Scores the eval split with the model's serving signature; blesses it at ``min_accuracy``."""
    predict = tf.saved_model.load(os.path.join(model.uri, "Format-Serving")).signatures["serving_default"]
    files = glob.glob(os.path.join(examples.uri, "Split-eval", "*"))
    correct = total = 0
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(64):
        labels = tf.io.parse_example(batch, {label_key: tf.io.FixedLenFeature([], tf.int64)})[label_key]
        predicted = tf.argmax(predict(examples=batch)["outputs"], axis=1)
        correct += int(tf.reduce_sum(tf.cast(predicted == labels, tf.int64)))
        total += int(batch.shape[0])
    accuracy = correct / total
    blessed = accuracy >= min_accuracy
    with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"):
        pass
    blessing.set_int_custom_property("blessed", int(blessed))
    return {"accuracy": accuracy, "examples_scored": total}


def _create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    schema_dir: str,
    module_file: str,
    serving_model_dir: str,
    metadata_path: str,
) -> tfx.dsl.Pipeline:
    schema_importer = tfx.dsl.Importer(
        source_uri=schema_dir, artifact_type=tfx.types.standard_artifacts.Schema
    ).with_id("schema_importer")
    example_gen = tfx.components.CsvExampleGen(input_base=data_root)
    trainer = tfx.components.Trainer(
        module_file=module_file,
        examples=example_gen.outputs["examples"],
        schema=schema_importer.outputs["result"],
        train_args=tfx.proto.TrainArgs(num_steps=100),
        eval_args=tfx.proto.EvalArgs(num_steps=5),
    )
    gate = accuracy_gate(
        model=trainer.outputs["model"], examples=example_gen.outputs["examples"], min_accuracy=0.8
    )
    with tfx.dsl.Cond(gate.outputs["accuracy"].future()[0].value >= 0.8):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            model_blessing=gate.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
            ),
        )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[schema_importer, example_gen, trainer, gate, pusher],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path
        ),
    )


if __name__ == "__main__":
    tfx.orchestration.LocalDagRunner().run(
        _create_pipeline(
            pipeline_name=_pipeline_name,
            pipeline_root=_pipeline_root,
            data_root=_data_root,
            schema_dir=_schema_dir,
            module_file=_module_file,
            serving_model_dir=_serving_model_dir,
            metadata_path=_metadata_path,
        )
    )
