"""Evaluator executor on the taxi eval split (4,968 rows), with and without per-run model reuse.

Runs ``Evaluator.execute`` in this process on the Examples and Model of an existing taxi run
(``mlpipe run pipelines/taxi.py`` with ``MLPIPE_TAXI_ROOT``; pass its ``root`` directory), with
the taxi ``EVAL_CONFIG`` and no baseline, as the first pipeline run does. Prints one JSON line:
the median executor seconds of ``--repeats`` runs "after" (as shipped) and "before" (TFMA's own
model loading: every Keras compiled-metrics combiner reloads the SavedModel), TFMA's import time
(paid once per process, excluded from both) and whether both variants wrote the same metrics.
The variants alternate so that neither always pays the first run's TensorFlow warm-up.
Reference on this machine kind: TFX 1.16's Evaluator took 28 s on this data, TFMA import included.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).parents[1]


def latest(root: str, node: str, key: str) -> str:
    """URI of the newest ``node`` output ``key`` under a pipeline root (``<node>/<key>/<id>``)."""
    uris = glob.glob(os.path.join(root, node, key, "*"))
    if not uris:
        sys.exit(f"no {node} {key} under {root}: run the taxi pipeline first (see --help)")
    return max(uris, key=lambda uri: int(os.path.basename(uri)))


def evaluate(examples_uri: str, model_uri: str, work: str) -> tuple[float, str]:
    """Seconds of one ``Evaluator.execute`` and the evaluation directory it wrote."""
    from pipelines_taxi import EVAL_CONFIG
    from transform_memory import executor_context  # bench/ is on sys.path when run as a script

    from mlpipe.components.evaluator import Evaluator
    from mlpipe.types.standard import Examples, Model, ModelBlessing, ModelEvaluation

    examples = Examples(uri=examples_uri)
    examples.split_names = ["train", "eval"]
    run_dir = tempfile.mkdtemp(dir=work)
    outputs = {
        "evaluation": ModelEvaluation(uri=os.path.join(run_dir, "evaluation")),
        "blessing": ModelBlessing(uri=os.path.join(run_dir, "blessing")),
    }
    inputs = {"examples": [examples], "model": [Model(uri=model_uri)]}
    parameters = {"eval_config": EVAL_CONFIG, "example_splits": ["eval"]}
    ctx = executor_context("Evaluator", run_dir, inputs, outputs, parameters)
    started = time.perf_counter()
    Evaluator.execute(ctx)
    return time.perf_counter() - started, outputs["evaluation"].uri


def metrics(evaluation_uri: str) -> dict[tuple[str, str], float]:
    import tensorflow_model_analysis as tfma

    values = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        for item in per_slice.metric_keys_and_values:
            key = (str(per_slice.slice_key).strip(), str(item.key).strip())
            values[key] = item.value.double_value.value
    return values


def identical(results: dict) -> bool:
    """Same metric keys and values (to 1e-6) and the same ``summary.txt`` in both variants."""
    after, before = results["after"], results["before"]
    return (
        after.keys() == before.keys()
        and all(abs(after[k] - before[k]) <= 1e-6 for k in after)
        and results["after_summary"] == results["before_summary"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_root = os.path.join(os.environ.get("MLPIPE_TAXI_ROOT", os.path.join("runs", "taxi")), "root")
    parser.add_argument(
        "--pipeline-root", default=default_root, help=f"taxi run root (default {default_root})"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--after-only", action="store_true", help="skip the slow 'before' variant")
    args = parser.parse_args()
    examples_uri = latest(args.pipeline_root, "CsvExampleGen", "examples")
    model_uri = latest(args.pipeline_root, "Trainer", "model")

    import mlpipe  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

    started = time.perf_counter()
    import tensorflow_model_analysis  # noqa: F401

    import_s = time.perf_counter() - started
    sys.modules["pipelines_taxi"] = _load_taxi_module()
    from mlpipe.components import evaluator

    variants = ["after"] if args.after_only else ["after", "before"]
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for variant in variants if repeat % 2 == 0 else variants[::-1]:
                if variant == "before":
                    with mock.patch.object(evaluator, "_reuse_models", lambda model, token: model):
                        elapsed, uri = evaluate(examples_uri, model_uri, work)
                else:
                    elapsed, uri = evaluate(examples_uri, model_uri, work)
                seconds[variant].append(round(elapsed, 2))
                results.setdefault(variant, metrics(uri))
                summary = Path(uri, evaluator.SUMMARY_FILE).read_text()
                results.setdefault(f"{variant}_summary", summary)
    report = {
        "bench": "evaluator",
        "after_s": round(statistics.median(seconds["after"]), 2),
        "before_s": round(statistics.median(seconds["before"]), 2) if "before" in seconds else None,
        "runs_s": seconds,
        "tfma_import_s": round(import_s, 2),
        "identical": identical(results) if "before" in results else None,
        "metrics": len(results["after"]),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    json.dump(report, sys.stdout)
    print()


def _load_taxi_module():
    """``pipelines/taxi.py`` as a module (it is a pipeline file, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipelines_taxi", REPO / "pipelines" / "taxi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
