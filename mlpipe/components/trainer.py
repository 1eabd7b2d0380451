"""Trainer: run the user's Keras ``run_fn(fn_args)`` and publish its SavedModel and logs.

``fn_args`` carries TFX's field names (see :mod:`mlpipe.components.fn_args`), so TFX module code
runs unchanged. The model goes to ``<model.uri>/Format-Serving`` (the layout Evaluator, Pusher and
TF Serving expect); TensorBoard logs go to the ModelRun artifact.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from mlpipe.components.keras2 import bind_keras_tuner_to_tf_keras, skip_autograph_for_graph_safe_libraries
from mlpipe.components.module_loader import check_function_source, user_function
from mlpipe.components.training_inputs import SERVING_MODEL_DIR, build_fn_args, read_hyperparameters
from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import ComponentError
from mlpipe.types.standard import Examples, HyperParameters, Model, ModelRun, Schema, TransformGraph


class Trainer(Component):
    """``Trainer(examples, schema=, transform_graph=, hyperparameters=, base_model=, module_file= | run_fn=,
    train_args={"num_steps": N}, eval_args={"num_steps": N}, custom_config={...})``.

    With a ``transform_graph``, pass the Transform's ``transformed_examples`` as ``examples``.
    """

    SPEC = ComponentSpec(
        inputs={
            "examples": InputSpec(Examples),
            "schema": InputSpec(Schema, optional=True),
            "transform_graph": InputSpec(TransformGraph, optional=True),
            "hyperparameters": InputSpec(HyperParameters, optional=True),
            "base_model": InputSpec(Model, optional=True),
        },
        outputs={"model": Model, "model_run": ModelRun},
        parameters={
            "module_file": ParameterSpec(ModuleFile, default=None, optional=True),
            "run_fn": ParameterSpec(FunctionPath, default=None, optional=True),
            "train_args": ParameterSpec(dict, default=None, optional=True),
            "eval_args": ParameterSpec(dict, default=None, optional=True),
            "custom_config": ParameterSpec(dict, default=None, optional=True),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_function_source(self.id, self.parameters, "run_fn", "run_fn")

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        skip_autograph_for_graph_safe_libraries()
        bind_keras_tuner_to_tf_keras()  # run_fn may rebuild the Tuner's HyperParameters
        run_fn = user_function(ctx.node_id, ctx.parameters, "run_fn", "run_fn")
        model = ctx.outputs["model"]
        model_run = ctx.outputs["model_run"]
        base_model = ctx.input("base_model")
        serving_model_dir = os.path.join(model.uri, SERVING_MODEL_DIR)
        fn_args = dataclasses.replace(
            build_fn_args(ctx, "Trainer"),
            serving_model_dir=serving_model_dir,
            model_run_dir=model_run.uri,
            working_dir=ctx.tmp_dir,
            base_model=os.path.join(base_model.uri, SERVING_MODEL_DIR) if base_model else None,
            hyperparameters=read_hyperparameters(ctx.input("hyperparameters")),
        )
        ctx.log.info(
            "run_fn: %d train steps, %s eval steps, train files %s",
            fn_args.train_steps or 0,
            fn_args.eval_steps,
            fn_args.train_files,
        )
        from mlpipe.components.training_progress import log_training_progress

        started = time.perf_counter()
        with log_training_progress(ctx.log):
            run_fn(fn_args)
        ctx.log.info("run_fn finished in %.1fs", time.perf_counter() - started)
        if not os.path.isdir(serving_model_dir):
            raise ComponentError(
                ctx.node_id,
                f"run_fn returned without saving a model to fn_args.serving_model_dir "
                f"({fn_args.serving_model_dir}); call model.save(fn_args.serving_model_dir, ...)",
            )
