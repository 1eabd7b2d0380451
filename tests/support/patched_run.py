"""A process that uses Beam, TensorFlow, tf-keras as a notebook would, runs a small taxi pipeline with
mlpipe (Transform on Beam -> Trainer, then a Tuner), and prints one JSON line: the pipeline's outputs, the
library patches in effect during the run, and whether the libraries are as before once it ended.

Usage: ``python -m tests.support.patched_run WORK_DIR`` (``MLPIPE_LIBRARY_PATCHES`` decides on/off).
tests/test_library_patches.py runs it with patches on and off and compares.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

import mlpipe  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import apache_beam  # noqa: F401
import tensorflow as tf
import tf_keras
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.worker import statecache
from apache_beam.transforms import core, ptransform, userstate, util
from apache_beam.typehints import decorators
from tensorflow.python.autograph.core import config as autograph_config

from mlpipe import InputArtifact, OutputArtifact, Pipeline, component
from mlpipe.components.trainer import Trainer
from mlpipe.components.transform import Transform
from mlpipe.components.tuner import Tuner
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from mlpipe.types import Model
from mlpipe.types.standard import ModelRun
from tests.components.test_transform_trainer import TAXI_MODULE, TUNER_MODULE, taxi_examples

ROWS = 600


@component
def patches_in_effect(model: InputArtifact[Model], seen: OutputArtifact[ModelRun]):
    """Records which library patches are in effect while a node of the run executes."""
    from mlpipe import library_patches

    Path(seen.uri, "applied.json").write_text(json.dumps(library_patches.applied()))


def library_state() -> dict[str, object]:
    """What the patches change, as identities a notebook's later code would see."""
    return {
        "get_dofn_specs": id(userstate.get_dofn_specs),
        "get_signature": [id(m.get_signature) for m in (decorators, core, ptransform, util)],
        "view_as": id(PipelineOptions.__dict__["view_as"]),
        "get_deep_size": id(statecache.get_deep_size),
        "conversion_rules": [id(r) for r in autograph_config.CONVERSION_RULES],
        "fit": id(tf_keras.Model.__dict__["fit"]),
        "keras": id(sys.modules.get("keras")),
        "keras_tuner_loaded": "keras_tuner" in sys.modules,
        "stdout": id(sys.stdout),
        "stderr": id(sys.stderr),
        "gc_callbacks": [id(c) for c in gc.callbacks],
        "gc_frozen": gc.get_freeze_count(),
    }


def read_examples(directory: str) -> list[dict[str, list]]:
    """The examples as {feature: values} (bytes as text), in a canonical order: by their integer and
    text features, then their floats rounded (float sums in Beam combiners vary in the last bits)."""
    files = sorted(tf.io.gfile.glob(os.path.join(directory, "*.gz")))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        row = {}
        for name, feature in sorted(features.items()):
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value) if kind else []
            row[name] = [v.decode() if isinstance(v, bytes) else v for v in values]
        rows.append(row)

    def order(row: dict[str, list]) -> str:
        return json.dumps(
            {k: [round(v, 4) if isinstance(v, float) else v for v in vs] for k, vs in row.items()}
        )

    return sorted(rows, key=order)


def main(work: Path) -> None:
    (work / "tuner_module.py").write_text(TUNER_MODULE)
    data = taxi_examples(rows=ROWS)
    transform = Transform(
        examples=data.outputs["examples"],
        schema=data.outputs["schema"],
        module_file=str(TAXI_MODULE),
        beam_threshold_rows=0,  # TFT on Beam, where the Beam patches act
    )
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        schema=data.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        module_file=str(TAXI_MODULE),
        train_args={"num_steps": 20},
        eval_args={"num_steps": 2},
        custom_config={"first_dnn_layer_size": 8, "batch_size": 16},
    )
    probe = patches_in_effect(model=trainer.outputs["model"])
    nodes = [data, transform, trainer, probe]
    root, metadata = str(work / "root"), sqlite(work / "metadata.sqlite")
    before = library_state()
    result = LocalDagRunner(progress=False, max_workers=1).run(
        Pipeline("patched", root, nodes, metadata=metadata)
    )
    after_run = library_state()

    tuner = Tuner(
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        module_file=str(work / "tuner_module.py"),
        train_args={"num_steps": 3},
        eval_args={"num_steps": 1},
    )
    try:  # the same pipeline plus a Tuner: only the Tuner executes
        tuned = LocalDagRunner(progress=False).run(
            Pipeline("patched", root, [*nodes, tuner], metadata=metadata)
        )
        hyperparameters = tuned.results["Tuner"].outputs["best_hyperparameters"][0]
        tuner_outcome = "best: " + ", ".join(sorted(os.listdir(hyperparameters.uri)))
    except RunError as e:
        tuner_outcome = "error: " + str(e.result.failed["Tuner"])
    after_tuner = library_state()

    def output(node: str, key: str):
        return result.results[node].outputs[key][0]

    transformed = output("Transform", "transformed_examples")
    graph = output("Transform", "transform_graph").uri
    assets = os.path.join(graph, "transform_fn", "assets")
    raw_eval = output("taxi_examples", "examples").split_uri("eval")
    files = tf.io.gfile.glob(os.path.join(raw_eval, "*.gz"))
    raw = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(100)]
    serving = tf.saved_model.load(os.path.join(output("Trainer", "model").uri, "Format-Serving"))
    scores = serving.signatures["serving_default"](examples=tf.constant(raw))
    print(
        json.dumps(
            {
                "transformed": {s: read_examples(transformed.split_uri(s)) for s in ("train", "eval")},
                "vocabularies": {n: Path(assets, n).read_text() for n in sorted(os.listdir(assets))},
                "scores": [float(v) for v in next(iter(scores.values())).numpy().ravel()],
                "applied": json.loads(
                    Path(output("patches_in_effect", "seen").uri, "applied.json").read_text()
                ),
                "tuner": tuner_outcome,
                "changed_after_run": sorted(k for k in before if before[k] != after_run[k]),
                "changed_after_tuner": sorted(k for k in before if before[k] != after_tuner[k]),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
