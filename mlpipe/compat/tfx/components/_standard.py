"""TFX's standard components with TFX's argument names, as subclasses of mlpipe's.

Each class takes what ``tfx.components.X(...)`` takes, turns ``tfx.proto`` messages into the JSON
dicts mlpipe's components store in the IR, and refuses the arguments mlpipe cannot honour with an
error naming them. The node id stays the class name (``Trainer``), as in TFX. The classes live in
this importable module, so remote node processes load them without the ``tfx`` hook.
"""

from __future__ import annotations

from typing import Any

from mlpipe.compat.tfx.proto import to_dict
from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.components import (
    bulk_inferrer,
    evaluator,
    example_gen,
    example_validator,
    infra_validator,
    pusher,
    schema_gen,
    statistics_gen,
    trainer,
    transform,
    tuner,
)


def _given(**kwargs: Any) -> dict[str, Any]:
    """The arguments the user set, protos as dicts."""
    return {k: to_dict(v) for k, v in kwargs.items() if v is not None}


def _refuse(component: str, hint: str, **kwargs: Any) -> None:
    """Fail on any argument set to something other than TFX's default (None/False/empty)."""
    for name, value in kwargs.items():
        if value is not None and value is not False and value != {} and value != []:
            raise UnsupportedTfxFeature(f"tfx.components.{component}({name}=...)", hint)


class CsvExampleGen(example_gen.CsvExampleGen):
    def __init__(
        self,
        input_base: str | None = None,
        input_config: Any = None,
        output_config: Any = None,
        range_config: Any = None,
        custom_config: Any = None,
        custom_executor_spec: Any = None,
    ):
        _refuse("CsvExampleGen", "mlpipe reads CSV with its own reader; drop it", custom_config=custom_config,
                custom_executor_spec=custom_executor_spec)  # fmt: skip
        super().__init__(
            **_given(
                input_base=input_base,
                input_config=input_config,
                output_config=output_config,
                range_config=range_config,
            )  # fmt: skip
        )


class ImportExampleGen(example_gen.ImportExampleGen):
    def __init__(
        self,
        input_base: str | None = None,
        input_config: Any = None,
        output_config: Any = None,
        range_config: Any = None,
        payload_format: int = 6,  # FORMAT_TF_EXAMPLE
        custom_config: Any = None,
    ):
        _refuse(
            "ImportExampleGen", "only gzipped TFRecords of tf.Example are read", custom_config=custom_config
        )
        if payload_format != 6:
            raise UnsupportedTfxFeature(
                "tfx.components.ImportExampleGen(payload_format=...)",
                "only FORMAT_TF_EXAMPLE is read; for Parquet use mlpipe.components.parquet_example_gen",
            )
        super().__init__(
            **_given(
                input_base=input_base,
                input_config=input_config,
                output_config=output_config,
                range_config=range_config,
            )  # fmt: skip
        )


class StatisticsGen(statistics_gen.StatisticsGen):
    def __init__(self, examples: Any = None, schema: Any = None, stats_options: Any = None,
                 exclude_splits: list[str] | None = None):  # fmt: skip
        _refuse("StatisticsGen", "statistics are computed for every split, without a schema",
                schema=schema, stats_options=stats_options, exclude_splits=exclude_splits)  # fmt: skip
        super().__init__(examples=examples)


class SchemaGen(schema_gen.SchemaGen):
    def __init__(self, statistics: Any = None, infer_feature_shape: bool = True,
                 exclude_splits: list[str] | None = None):  # fmt: skip
        super().__init__(**_given(statistics=statistics, infer_feature_shape=bool(infer_feature_shape),
                                  exclude_splits=exclude_splits))  # fmt: skip


class ImportSchemaGen(schema_gen.ImportSchemaGen):
    def __init__(self, schema_file: str):
        super().__init__(schema_file=schema_file)


class ExampleValidator(example_validator.ExampleValidator):
    """TFX's ExampleValidator records anomalies without failing the pipeline; so does this one
    (mlpipe's own default fails the node on anomalies)."""

    def __init__(self, statistics: Any = None, schema: Any = None, exclude_splits: list[str] | None = None,
                 custom_validation_config: Any = None):  # fmt: skip
        _refuse("ExampleValidator", "validate every split against the schema; drop it",
                exclude_splits=exclude_splits, custom_validation_config=custom_validation_config)  # fmt: skip
        super().__init__(statistics=statistics, schema=schema, fail_on_anomalies=False)


class Transform(transform.Transform):
    def __init__(
        self,
        examples: Any = None,
        schema: Any = None,
        module_file: str | None = None,
        preprocessing_fn: str | None = None,
        splits_config: Any = None,
        analyzer_cache: Any = None,
        materialize: bool = True,
        disable_analyzer_cache: bool = False,
        force_tf_compat_v1: bool = False,
        custom_config: Any = None,
        disable_statistics: bool = False,
        stats_options_updater_fn: Any = None,
    ):
        hint = "mlpipe's Transform always materializes examples and writes no statistics of its own"
        _refuse("Transform", hint, custom_config=custom_config, stats_options_updater_fn=stats_options_updater_fn,
                materialize=not materialize)  # fmt: skip
        super().__init__(
            **_given(
                examples=examples,
                schema=schema,
                module_file=module_file,
                preprocessing_fn=preprocessing_fn,
                splits_config=splits_config,
                analyzer_cache=None if disable_analyzer_cache else analyzer_cache,
                force_tf_compat_v1=bool(force_tf_compat_v1),
            )  # fmt: skip
        )


def _executor_checked(component: str, custom_executor_spec: Any) -> None:
    """TFX's Keras path is ``ExecutorClassSpec(GenericExecutor)``: what mlpipe always does."""
    from mlpipe.compat.tfx.components.trainer.executor import GenericExecutor
    from mlpipe.compat.tfx.dsl.components.base.executor_spec import ExecutorClassSpec

    if custom_executor_spec is None:
        return
    if (
        isinstance(custom_executor_spec, ExecutorClassSpec)
        and custom_executor_spec.executor_class is GenericExecutor
    ):
        return
    raise UnsupportedTfxFeature(
        f"tfx.components.{component}(custom_executor_spec=...)",
        "only the generic (run_fn) executor exists; drop custom_executor_spec and define run_fn",
    )


class Trainer(trainer.Trainer):
    def __init__(
        self,
        examples: Any = None,
        transformed_examples: Any = None,
        transform_graph: Any = None,
        schema: Any = None,
        base_model: Any = None,
        hyperparameters: Any = None,
        module_file: str | None = None,
        run_fn: str | None = None,
        trainer_fn: str | None = None,
        train_args: Any = None,
        eval_args: Any = None,
        custom_config: dict[str, Any] | None = None,
        custom_executor_spec: Any = None,
    ):
        _refuse(
            "Trainer", "Estimator trainers are gone; write run_fn(fn_args) with Keras", trainer_fn=trainer_fn
        )
        _executor_checked("Trainer", custom_executor_spec)
        super().__init__(
            **_given(
                examples=examples if examples is not None else transformed_examples,
                transform_graph=transform_graph,
                schema=schema,
                base_model=base_model,
                hyperparameters=hyperparameters,
                module_file=module_file,
                run_fn=run_fn,
                train_args=train_args,
                eval_args=eval_args,
                custom_config=custom_config,
            )  # fmt: skip
        )


class Tuner(tuner.Tuner):
    def __init__(
        self,
        examples: Any = None,
        schema: Any = None,
        transform_graph: Any = None,
        base_model: Any = None,
        module_file: str | None = None,
        tuner_fn: str | None = None,
        train_args: Any = None,
        eval_args: Any = None,
        tune_args: Any = None,
        custom_config: dict[str, Any] | None = None,
    ):
        _refuse("Tuner", "tuning starts from scratch; drop base_model", base_model=base_model)
        super().__init__(
            **_given(
                examples=examples,
                schema=schema,
                transform_graph=transform_graph,
                module_file=module_file,
                tuner_fn=tuner_fn,
                train_args=train_args,
                eval_args=eval_args,
                tune_args=tune_args,
                custom_config=custom_config,
            )  # fmt: skip
        )


class Evaluator(evaluator.Evaluator):
    def __init__(
        self,
        examples: Any = None,
        model: Any = None,
        baseline_model: Any = None,
        feature_slicing_spec: Any = None,
        fairness_indicator_thresholds: Any = None,
        example_splits: list[str] | None = None,
        eval_config: Any = None,
        schema: Any = None,
        module_file: str | None = None,
        module_path: str | None = None,
    ):
        _refuse("Evaluator", "give a tfma.EvalConfig with slicing_specs and metrics instead",
                feature_slicing_spec=feature_slicing_spec,
                fairness_indicator_thresholds=fairness_indicator_thresholds, module_file=module_file,
                module_path=module_path)  # fmt: skip
        if eval_config is None:
            raise UnsupportedTfxFeature(
                "tfx.components.Evaluator(eval_config=None)", "pass eval_config=tfma.EvalConfig(...)"
            )
        super().__init__(eval_config=eval_config, **_given(examples=examples, model=model,
                         baseline_model=baseline_model, schema=schema, example_splits=example_splits))  # fmt: skip


class InfraValidator(infra_validator.InfraValidator):
    """mlpipe validates with its own serving process on this machine (``mlpipe serve``), whatever
    ``serving_spec`` names; a Kubernetes platform is refused."""

    def __init__(
        self,
        model: Any = None,
        serving_spec: Any = None,
        examples: Any = None,
        request_spec: Any = None,
        validation_spec: Any = None,
    ):
        spec = to_dict(serving_spec) or {}
        _refuse(
            "InfraValidator", "validation runs in a local serving process", kubernetes=spec.get("kubernetes")
        )
        request = to_dict(request_spec) or {}
        params: dict[str, Any] = {}
        if request:
            params["request_spec"] = {
                "num_examples": int(request.get("num_examples") or 1),
                "split": request.get("split_name") or "eval",
            }
        seconds = (to_dict(validation_spec) or {}).get("max_loading_time_seconds")
        if seconds:
            params["max_loading_seconds"] = float(seconds)
        super().__init__(**_given(model=model, examples=examples), **params)


class Pusher(pusher.Pusher):
    def __init__(
        self,
        model: Any = None,
        model_blessing: Any = None,
        infra_blessing: Any = None,
        push_destination: Any = None,
        custom_config: dict[str, Any] | None = None,
        custom_executor_spec: Any = None,
    ):
        _refuse("Pusher", "only filesystem push_destination is supported", custom_config=custom_config,
                custom_executor_spec=custom_executor_spec)  # fmt: skip
        destination = dict(to_dict(push_destination) or {})
        filesystem = destination["filesystem"] = dict(destination.get("filesystem") or {})
        versioning = filesystem.pop("versioning", "AUTO")
        if versioning not in ("AUTO", 0):
            raise UnsupportedTfxFeature(
                "tfx.proto.PushDestination.Filesystem(versioning=UNIX_TIMESTAMP)",
                "versions are increasing integers (TF Serving's rule); drop versioning",
            )
        super().__init__(push_destination=destination, **_given(model=model, model_blessing=model_blessing,
                         infra_blessing=infra_blessing))  # fmt: skip


class BulkInferrer(bulk_inferrer.BulkInferrer):
    def __init__(
        self,
        examples: Any = None,
        model: Any = None,
        model_blessing: Any = None,
        data_spec: Any = None,
        model_spec: Any = None,
        output_example_spec: Any = None,
    ):
        _refuse("BulkInferrer", "inference results are PredictionLogs; drop it",
                output_example_spec=output_example_spec, model_spec=model_spec)  # fmt: skip
        super().__init__(
            **_given(examples=examples, model=model, model_blessing=model_blessing, data_spec=data_spec)
        )
