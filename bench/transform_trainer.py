"""Transform and Trainer on the full taxi sample (15k rows), through the standard data components.

Prints one JSON line: executor seconds (wall and this process's CPU for the whole run) of
Transform and of Trainer (taxi_module's run_fn, --train-steps steps), plus the row counts.
Reference on this machine kind: TFX 1.16's Transform took 61 s and its Trainer 35 s on this data.
``--tf-compat-v1`` runs Transform with ``force_tf_compat_v1=True`` (a TF1 transform graph, which the
Trainer then loads). ``--scale-to-gaussian`` adds ``tft.scale_to_gaussian(fare)`` to the taxi module's
outputs and runs no Trainer: it measures what a batch-dependent analyzer costs, which Transform
analyzes with Beam (see ``mlpipe.components.tft_analysis._CLAIMED_COMBINERS``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from mlpipe import Pipeline
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.schema_gen import SchemaGen
from mlpipe.components.statistics_gen import StatisticsGen
from mlpipe.components.trainer import Trainer
from mlpipe.components.transform import Transform
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner

REPO = Path(__file__).parents[1]


TAXI_MODULE = REPO / "components" / "taxi_module.py"

GAUSSIAN_MODULE = f"""
import importlib.util

import tensorflow_transform as tft

_spec = importlib.util.spec_from_file_location("taxi_module", {str(TAXI_MODULE)!r})
taxi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(taxi)


def preprocessing_fn(inputs):
    outputs = taxi.preprocessing_fn(inputs)
    outputs["fare_gaussian"] = tft.scale_to_gaussian(taxi._as_float(taxi._fill_in_missing(inputs["fare"])))
    return outputs
"""


def build(
    root: str, input_base: str, train_steps: int, tf_compat_v1: bool = False, gaussian: bool = False
) -> Pipeline:
    example_gen = CsvExampleGen(input_base=input_base)
    statistics = StatisticsGen(examples=example_gen.outputs["examples"])
    schema = SchemaGen(statistics=statistics.outputs["statistics"])
    module_file = str(TAXI_MODULE)
    if gaussian:
        module_file = os.path.join(root, "taxi_gaussian_module.py")
        with open(module_file, "w", encoding="utf-8") as f:
            f.write(GAUSSIAN_MODULE)
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        module_file=module_file,
        force_tf_compat_v1=tf_compat_v1,
    )
    if gaussian:
        components = [example_gen, statistics, schema, transform]
        return Pipeline("bench_tt", root, components, metadata=sqlite(os.path.join(root, "metadata.sqlite")))
    trainer = Trainer(
        examples=transform.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        transform_graph=transform.outputs["transform_graph"],
        module_file=str(TAXI_MODULE),
        train_args={"num_steps": train_steps},
        eval_args={"num_steps": 50},
        custom_config={"epochs": 2},
    )
    components = [example_gen, statistics, schema, transform, trainer]
    return Pipeline("bench_tt", root, components, metadata=sqlite(os.path.join(root, "metadata.sqlite")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-base", default=str(REPO / "examples" / "data"))
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--tf-compat-v1", action="store_true", help="Transform(force_tf_compat_v1=True)")
    parser.add_argument(
        "--scale-to-gaussian", action="store_true", help="add scale_to_gaussian(fare); no Trainer"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        started, cpu = time.perf_counter(), time.process_time()
        result = LocalDagRunner(max_workers=1, progress=False).run(
            build(root, args.input_base, args.train_steps, args.tf_compat_v1, args.scale_to_gaussian)
        )
        transform = result.results["Transform"]
        transformed = transform.outputs["transformed_examples"][0]
        trainer = result.results.get("Trainer")
        with open(transform.log_path, encoding="utf-8") as log:
            analyzed_with_beam = "analyzing ['train'] with Beam" in log.read()
        report = {
            "bench": "transform_trainer",
            "transform_s": round(transform.executor_seconds, 2),
            "trainer_s": round(trainer.executor_seconds, 2) if trainer else None,
            "train_steps": args.train_steps if trainer else 0,
            "tf_compat_v1": args.tf_compat_v1,
            "scale_to_gaussian": args.scale_to_gaussian,
            "analyzed_with_beam": analyzed_with_beam,
            "rows": {s: transformed.get_custom_property(f"num_rows_{s}") for s in transformed.split_names},
            "run_wall_s": round(time.perf_counter() - started, 2),
            "run_cpu_s": round(time.process_time() - cpu, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
