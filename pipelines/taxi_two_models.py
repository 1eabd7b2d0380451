"""The taxi pipeline with two candidate models: the Evaluator picks the better one for the Pusher.

ExampleGen -> StatisticsGen -> ExampleValidator -> Transform -> two Trainers on the same
transformed examples (the module's wide-and-deep DNN and a linear model, ``custom_config["model"]``)
-> ONE Evaluator that evaluates both on the same slices against the latest blessed model, blesses
each on the same thresholds, and hands the best blessed one (by AUC) to the Pusher.

    mlpipe run pipelines/taxi_two_models.py
"""

from __future__ import annotations

import os

from taxi import DATA_ROOT, EVAL_CONFIG, MODULE_FILE, SCHEMA_FILE, data_components

from mlpipe import Pipeline, Resolver
from mlpipe.components.evaluator import Evaluator
from mlpipe.components.pusher import Pusher
from mlpipe.components.trainer import Trainer
from mlpipe.metadata.config import MetadataConfig
from mlpipe.types import Model, ModelBlessing

# The blessed candidate with the higher AUC on the overall slice is pushed.
MODEL_SELECTION = {"metric": "auc", "higher_is_better": True}


def create_pipeline(
    pipeline_root: str | None = None,
    serving_model_dir: str | None = None,
    data_root: str = DATA_ROOT,
    module_file: str = MODULE_FILE,
    schema_file: str = SCHEMA_FILE,
    train_steps: dict[str, int] | None = None,
    eval_steps: int = 150,
    eval_config: dict | None = None,
    metadata: MetadataConfig | None = None,
    name: str = "taxi_two_models",
) -> Pipeline:
    """``train_steps``: per candidate (``wide_deep``, ``linear``), default 1000 each. Runs under
    ``$MLPIPE_TAXI_ROOT`` (or ./runs/taxi_two_models), serving dir beside it."""
    steps = {"wide_deep": 1000, "linear": 1000, **(train_steps or {})}
    base = os.environ.get("MLPIPE_TAXI_ROOT", os.path.join(os.getcwd(), "runs", "taxi_two_models"))
    pipeline_root = pipeline_root or os.path.join(base, "root")
    serving_model_dir = serving_model_dir or os.path.join(base, "serving", "taxi")

    example_gen, statistics_gen, schema_gen, example_validator, transform = data_components(
        data_root, schema_file, module_file
    )
    trainers = {
        kind: Trainer(
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            module_file=module_file,
            train_args={"num_steps": steps[kind]},
            eval_args={"num_steps": eval_steps},
            custom_config={"model": kind},
        ).with_id(f"{kind}_trainer")
        for kind in ("wide_deep", "linear")
    }
    baseline = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing).with_id(
        "latest_blessed_model_resolver"
    )
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        models={kind: trainer.outputs["model"] for kind, trainer in trainers.items()},
        model_selection=MODEL_SELECTION,
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config or EVAL_CONFIG,
    )
    pusher = Pusher(
        model=evaluator.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": serving_model_dir}},
    )
    components = [
        example_gen, statistics_gen, schema_gen, example_validator, transform, *trainers.values(), baseline,
        evaluator, pusher,
    ]  # fmt: skip
    return Pipeline(name, pipeline_root, components, metadata=metadata)
