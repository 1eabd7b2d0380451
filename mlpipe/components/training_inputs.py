"""What Trainer and Tuner share: the component inputs turned into the ``FnArgs`` user code gets."""

from __future__ import annotations

import json
import os
from typing import Any

from mlpipe.components.fn_args import DataAccessor, FnArgs
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import Artifact

HYPERPARAMETERS_FILE = "best_hyperparameters.txt"
SERVING_MODEL_DIR = "Format-Serving"


def split_files(examples: Artifact, split: str) -> list[str]:
    """File patterns of one split, or a DefinitionError naming the splits there are."""
    if split not in examples.split_names:
        raise DefinitionError(
            f"examples {examples.uri} have no split '{split}' (splits: {examples.split_names}); "
            f"train and eval need 'train' and 'eval'"
        )
    return [os.path.join(examples.split_uri(split), "*.gz")]


def steps(args: dict[str, Any] | None, name: str) -> int | None:
    """``num_steps`` from TFX-style ``train_args`` / ``eval_args`` ({"num_steps": N})."""
    if not args:
        return None
    value = args.get("num_steps")
    if value is not None and (not isinstance(value, int) or value < 1):
        raise DefinitionError(f"{name} must look like {{'num_steps': 100}} with a positive int, got {args!r}")
    return value


def read_hyperparameters(artifact: Artifact | None) -> dict[str, Any] | None:
    """The Tuner's best hyperparameters (KerasTuner ``get_config()`` dict), as TFX passes them."""
    if artifact is None:
        return None
    with open(os.path.join(artifact.uri, HYPERPARAMETERS_FILE)) as f:
        return json.load(f)


def build_fn_args(ctx: ExecutionContext, component: str) -> FnArgs:
    """FnArgs from the inputs every training component has (examples, schema, transform_graph)."""
    examples = ctx.input("examples")
    assert examples is not None
    schema = ctx.input("schema")
    transform_graph = ctx.input("transform_graph")
    return FnArgs(
        train_files=split_files(examples, "train"),
        eval_files=split_files(examples, "eval"),
        train_steps=steps(ctx.parameters.get("train_args"), "train_args"),
        eval_steps=steps(ctx.parameters.get("eval_args"), "eval_args"),
        schema_path=os.path.join(schema.uri, "schema.pbtxt") if schema else None,
        transform_output=transform_graph.uri if transform_graph else None,
        data_accessor=DataAccessor(("mlpipe", component)),
        custom_config=dict(ctx.parameters.get("custom_config") or {}),
    )
