"""Tuner: run the user's ``tuner_fn(fn_args)`` search and publish the best hyperparameters.

``best_hyperparameters.txt`` holds the JSON of KerasTuner's ``HyperParameters.get_config()``;
the Trainer reads it into ``fn_args.hyperparameters`` (as TFX does), and
``keras_tuner.HyperParameters.from_config`` rebuilds the object.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, NamedTuple

from mlpipe.components.keras2 import import_keras_tuner, skip_autograph_for_graph_safe_libraries
from mlpipe.components.module_loader import check_function_source, user_function
from mlpipe.components.training_inputs import HYPERPARAMETERS_FILE, build_fn_args
from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DefinitionError
from mlpipe.types.standard import Examples, HyperParameters, Schema, TransformGraph, TunerResults


class TunerFnResult(NamedTuple):
    """What ``tuner_fn`` returns: a KerasTuner tuner and the keyword arguments of ``tuner.search``."""

    tuner: Any
    fit_kwargs: dict[str, Any]


class Tuner(Component):
    """``Tuner(examples, schema=, transform_graph=, module_file= | tuner_fn=, train_args=, eval_args=,
    tune_args=, custom_config=)``; outputs ``best_hyperparameters`` and ``tuner_results`` (every trial,
    best first, in ``tuner_results.json``).

    Trials run one after another in this process: ``tune_args`` accepts only TFX's
    ``{"num_parallel_trials": 1}`` (distributed tuning is the tuner's own business).
    """

    SPEC = ComponentSpec(
        inputs={
            "examples": InputSpec(Examples),
            "schema": InputSpec(Schema, optional=True),
            "transform_graph": InputSpec(TransformGraph, optional=True),
        },
        outputs={"best_hyperparameters": HyperParameters, "tuner_results": TunerResults},
        parameters={
            "module_file": ParameterSpec(ModuleFile, default=None, optional=True),
            "tuner_fn": ParameterSpec(FunctionPath, default=None, optional=True),
            "train_args": ParameterSpec(dict, default=None, optional=True),
            "eval_args": ParameterSpec(dict, default=None, optional=True),
            "tune_args": ParameterSpec(dict, default=None, optional=True),
            "custom_config": ParameterSpec(dict, default=None, optional=True),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_function_source(self.id, self.parameters, "tuner_fn", "tuner_fn")
        tune_args = self.parameters["tune_args"]
        if tune_args and tune_args != {"num_parallel_trials": 1}:
            raise DefinitionError(
                f"{self.id}: tune_args {tune_args!r} is not supported; trials run sequentially, "
                f"so only {{'num_parallel_trials': 1}} is accepted"
            )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        skip_autograph_for_graph_safe_libraries()
        import_keras_tuner(ctx.node_id)
        tuner_fn = user_function(ctx.node_id, ctx.parameters, "tuner_fn", "tuner_fn")
        fn_args = dataclasses.replace(
            build_fn_args(ctx, "Tuner"), working_dir=os.path.join(ctx.tmp_dir, "tuner")
        )
        result = tuner_fn(fn_args)
        if not (hasattr(result, "tuner") and hasattr(result, "fit_kwargs")):
            raise DefinitionError(
                f"{ctx.node_id}: tuner_fn must return TunerFnResult(tuner=..., fit_kwargs={{...}}), "
                f"got {type(result).__name__}"
            )
        from mlpipe.components.training_progress import log_training_progress

        with log_training_progress(ctx.log):
            result.tuner.search(**result.fit_kwargs)
        best = result.tuner.get_best_hyperparameters(1)
        if not best:
            raise DefinitionError(f"{ctx.node_id}: the tuner search finished without a completed trial")
        config = best[0].get_config()
        out = ctx.outputs["best_hyperparameters"]
        with open(os.path.join(out.uri, HYPERPARAMETERS_FILE), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        ctx.log.info("best hyperparameters: %s", best[0].values)
        trials = trial_summaries(result.tuner)
        results = ctx.outputs["tuner_results"]
        with open(os.path.join(results.uri, TUNER_RESULTS_FILE), "w") as f:
            json.dump(trials, f, indent=2, sort_keys=True, default=str)
        results.set_custom_property("num_trials", len(trials))
        results.set_custom_property("best_score", trials[0]["score"] if trials else None)


TUNER_RESULTS_FILE = "tuner_results.json"


def trial_summaries(tuner: Any) -> list[dict[str, Any]]:
    """Every trial of the search, best first: id, status, score, hyperparameter values and the best
    value of each metric, so a search can be compared without KerasTuner's own files."""
    oracle = tuner.oracle
    best_first = [t.trial_id for t in oracle.get_best_trials(len(oracle.trials))]
    order = best_first + sorted(set(oracle.trials) - set(best_first))
    summaries = []
    for trial_id in order:
        trial = oracle.trials[trial_id]
        metrics = {name: trial.metrics.get_best_value(name) for name in trial.metrics.metrics}
        summaries.append(
            {
                "trial_id": trial_id,
                "status": str(trial.status),
                "score": trial.score,
                "hyperparameters": dict(trial.hyperparameters.values),
                "metrics": metrics,
            }
        )
    return summaries
