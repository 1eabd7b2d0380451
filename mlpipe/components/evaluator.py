"""Evaluator: TFMA metrics for a model on Examples, checked against thresholds → a ModelBlessing.

Value thresholds judge the model alone; change thresholds compare it with ``baseline_model`` (the
latest blessed model, from a ``Resolver``). When no baseline is wired (the first run), change
thresholds are skipped so the first model can be blessed, as in TFX. The evaluation directory is
TFMA's own output (``tfma.load_eval_result(uri)`` works) plus ``summary.txt``, the table logged.

The table puts the trivial model's value beside the candidate's where there is one: a model that
answers the majority class for every example scores accuracy = the majority-class rate of the
labels (from TFMA's ``MeanLabel``, added to any metrics spec with ``BinaryAccuracy``), and a
constant score has AUC 0.5. On the taxi data a constant "no" scores accuracy 0.77, so an accuracy
of 0.77 means nothing learned; the ``margin`` column says how far above that a model is.

Several candidates (``models={"wide_deep": ..., "linear": ...}`` with ``model_selection``) are
evaluated in the same TFMA run, each blessed on its own thresholds; the best blessed one by the
selection metric becomes the ``model`` output (a copy), which the Pusher takes; ``candidates.txt``
says how each candidate did and which was chosen
(:mod:`mlpipe.components.model_selection`).
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlpipe.components.example_splits import check_splits
from mlpipe.components.model_selection import (
    CANDIDATE_INPUT_PREFIX,
    CandidateResult,
    ModelSelection,
    best_unblessed,
    candidates_table,
    check_candidate_names,
    record_candidates,
    select,
)
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.io.schema_file import SCHEMA_FILE, read_schema
from mlpipe.types.artifact import Artifact
from mlpipe.types.channel import Channel
from mlpipe.types.standard import Examples, Model, ModelBlessing, ModelEvaluation, Schema

SERVING_MODEL_DIR = "Format-Serving"
SUMMARY_FILE = "summary.txt"
CANDIDATES_FILE = "candidates.txt"  # with several candidates: each one's metric and verdict, the choice
DEFAULT_SIGNATURE = "serving_default"
MEAN_LABEL = "mean_label"
_PART_BATCH_RECORDS = 1024  # on worker processes, each takes every N-th batch of this many records


class Evaluator(Component):
    """Evaluate ``model`` with a ``tfma.EvalConfig`` (proto or dict) on ``example_splits``.

    Outputs ``evaluation`` (ModelEvaluation) and ``blessing`` (ModelBlessing: ``BLESSED`` or
    ``NOT_BLESSED`` and custom property ``blessed``). A model that misses a threshold is a verdict,
    not an error: the node succeeds and the blessing says no, so a Pusher downstream skips it.

    ``models={"name": channel, ...}`` (two or more) instead of ``model``, with
    ``model_selection={"metric": "auc", "higher_is_better": True}``: one TFMA run evaluates every
    candidate on the same examples and slices; the extra output ``model`` is a copy of the best
    blessed candidate, and ``blessing`` is its blessing (NOT_BLESSED when no candidate is blessed).
    The evaluation and the blessing record every candidate's name, model id, metric and verdict.
    """

    SPEC = ComponentSpec(
        inputs={
            "examples": Examples,
            "model": Model,
            "baseline_model": InputSpec(Model, optional=True),
            "schema": InputSpec(Schema, optional=True),
        },
        outputs={"evaluation": ModelEvaluation, "blessing": ModelBlessing},
        parameters={
            "eval_config": ParameterSpec(dict),
            "example_splits": ParameterSpec(list, default=["eval"]),
        },
    )

    def __init__(
        self,
        *,
        eval_config: Any,
        models: Mapping[str, Channel] | None = None,
        model_selection: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        config = eval_config_to_dict(eval_config)
        if models is None:
            if model_selection is not None:
                raise DefinitionError(
                    "Evaluator: model_selection chooses among candidates; pass them as "
                    "models={'name': trainer.outputs['model'], ...} instead of model="
                )
            super().__init__(eval_config=config, **kwargs)
            return
        if "model" in kwargs:
            raise DefinitionError(
                "Evaluator: pass model= (one model) or models= (candidates by name), not both"
            )
        if not isinstance(models, Mapping):
            raise DefinitionError(
                f"Evaluator: models must be a dict of name -> trainer.outputs['model'], got {type(models).__name__}"
            )
        names = check_candidate_names("Evaluator", list(models))
        if model_selection is None:
            raise DefinitionError(
                "Evaluator: models= needs model_selection={'metric': 'auc', 'higher_is_better': True} "
                "to say which blessed candidate the Pusher gets"
            )
        rule = ModelSelection.from_dict("Evaluator", model_selection)
        # This node's own spec (Component.__init__ validates against self.SPEC): an input per
        # candidate and the selected ``model`` output. The launcher needs only the class's spec
        # (which inputs are optional: the same here) and reads the wiring from the compiled IR.
        self.SPEC = _candidates_spec(names)  # type: ignore[misc]
        channels = {CANDIDATE_INPUT_PREFIX + name: channel for name, channel in models.items()}
        super().__init__(
            eval_config=config, candidates=names, model_selection=rule.to_dict(), **channels, **kwargs
        )

    @classmethod
    def inputs_for_cache(cls, inputs: Mapping[str, list[Artifact]]) -> Mapping[str, list[Artifact]]:
        """A baseline that is a candidate itself (or the copy an earlier selection made of one) keys
        the cache as no baseline: every candidate is then judged on the value thresholds alone,
        so re-running a pipeline whose model was just blessed (and is now the latest blessed
        model) stays fully cached instead of re-evaluating the same model. With several
        candidates this keeps the same selection: the winner passes a change threshold against
        itself, and the candidates that would fail one against it were already behind it."""
        candidates = [a for key, found in inputs.items() if _is_model_input(key) for a in found]
        if _is_candidate(inputs.get("baseline_model"), candidates):
            return {**inputs, "baseline_model": []}
        return inputs

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        if ctx.parameters.get("candidates"):
            _evaluate_candidates(ctx)
            return
        model = ctx.input("model")
        baseline = ctx.input("baseline_model")
        examples = ctx.input("examples")
        assert model is not None and examples is not None  # required inputs
        if baseline is not None and _is_candidate([baseline], [model]):
            ctx.log.info("the baseline is the candidate model itself: judging it on value thresholds only")
            baseline = None
        schema = ctx.input("schema")
        evaluation = ctx.outputs["evaluation"]
        blessing = ctx.outputs["blessing"]
        splits = list(ctx.parameters["example_splits"])
        eval_config = _eval_config(
            ctx.node_id, ctx.parameters["eval_config"], has_baseline=baseline is not None
        )

        ctx.log.info(
            "evaluating %s on splits %s%s",
            model.uri,
            splits,
            f" against baseline {baseline.uri}" if baseline else "",
        )
        _run_tfma(
            eval_config,
            model_dirs={_model_name(eval_config): _serving_dir(model.uri)},
            baseline_dir=_serving_dir(baseline.uri) if baseline else None,
            split_dirs=[examples.split_uri(s) for s in check_splits(ctx.node_id, examples, splits)],
            schema_uri=schema.uri if schema else None,
            output_path=evaluation.uri,
            beam_pipeline_args=ctx.beam_pipeline_args,
        )
        blessed, table, majority_rate = _summarize(evaluation.uri, eval_config)
        with open(os.path.join(evaluation.uri, SUMMARY_FILE), "w", encoding="utf-8") as f:
            f.write(table + "\n")
        if majority_rate is not None:
            evaluation.set_custom_property("majority_class_rate", majority_rate)
        ctx.log.info("evaluation of %s: %s\n%s", model.uri, "BLESSED" if blessed else "NOT BLESSED", table)
        _write_blessing(blessing, blessed, model, baseline)


def eval_config_to_dict(eval_config: Any) -> dict[str, Any]:
    """A ``tfma.EvalConfig`` proto as a JSON dict (parameters must be JSON); dicts pass through."""
    if isinstance(eval_config, dict):
        return eval_config
    if (
        hasattr(eval_config, "DESCRIPTOR")
        and eval_config.DESCRIPTOR.full_name == "tensorflow_model_analysis.EvalConfig"
    ):
        from google.protobuf import json_format

        return json_format.MessageToDict(eval_config, preserving_proto_field_name=True)
    raise DefinitionError(
        f"Evaluator: eval_config must be a tfma.EvalConfig or a dict of its JSON form, got {type(eval_config).__name__}"
    )


def _parse_eval_config(node_id: str, config: dict[str, Any]) -> Any:
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    try:
        return json_format.ParseDict(config, tfma.EvalConfig())
    except json_format.ParseError as error:
        raise DefinitionError(f"{node_id}: eval_config is not a valid tfma.EvalConfig: {error}") from None


def _add_mean_label(parsed: Any) -> None:
    for spec in parsed.metrics_specs:
        names = {metric.class_name for metric in spec.metrics}
        if "BinaryAccuracy" in names and "MeanLabel" not in names:
            spec.metrics.add(class_name="MeanLabel")  # the majority-class rate, for the trivial baseline


def _eval_config(node_id: str, config: dict[str, Any], has_baseline: bool) -> Any:
    """Parse the stored dict and name the models as TFMA expects for one candidate (+ baseline).

    The candidate's ``model_specs`` entry defaults to the ``serving_default`` signature. Without a
    baseline, TFMA's rubber-stamp mode drops change thresholds instead of failing.
    """
    import tensorflow_model_analysis as tfma

    parsed = _parse_eval_config(node_id, config)
    specs = [spec for spec in parsed.model_specs if not spec.is_baseline]
    if len(specs) > 1:
        raise DefinitionError(
            f"{node_id}: eval_config has {len(specs)} candidate model_specs; the Evaluator takes one"
        )
    candidate = specs[0] if specs else tfma.ModelSpec()
    candidate.name = ""
    if not candidate.signature_name:
        candidate.signature_name = DEFAULT_SIGNATURE
    del parsed.model_specs[:]
    parsed.model_specs.append(candidate)
    _add_mean_label(parsed)
    return tfma.utils.update_eval_config_with_defaults(
        parsed, has_baseline=has_baseline, rubber_stamp=not has_baseline
    )


def _set_model_type(eval_config: Any, model_name: str, model_dir: str) -> None:
    """Tell TFMA whether the model is Keras, from its ``keras_metadata.pb``.

    Left unset, TFMA finds out by loading the whole model with Keras once more, which costs seconds.
    """
    from tensorflow_model_analysis import constants

    spec = next(spec for spec in eval_config.model_specs if spec.name == model_name)
    if not spec.model_type:
        keras = os.path.isfile(os.path.join(model_dir, "keras_metadata.pb"))
        spec.model_type = constants.TF_KERAS if keras else constants.TF_GENERIC


def _serving_dir(model_uri: str) -> str:
    path = os.path.join(model_uri, SERVING_MODEL_DIR)
    return path if os.path.isdir(path) else model_uri


def _run_tfma(
    eval_config: Any,
    *,
    model_dirs: Mapping[str, str],
    baseline_dir: str | None,
    split_dirs: list[str],
    schema_uri: str | None,
    output_path: str,
    beam_pipeline_args: list[str],
) -> None:
    """One in-process Beam pipeline: read the splits, extract predictions, evaluate, write.

    TFMA spends ~0.7 ms of Python a row in its metric combiners, one core's worth. Given
    ``--direct_num_workers=N --direct_running_mode=multi_processing`` (no ``--runner``), TFMA runs
    on N worker processes of the FnApiRunner, each evaluating its part of the records
    (``_records_of_part``). It is not the default: each worker holds TensorFlow and the models, so
    peak memory more than doubles (bench/transform_memory.py; docs/scaling.md has the numbers).

    Each model is loaded once per thread of this run (see ``_reuse_models``). A Keras model's
    compiled metrics are updated eagerly through tf-keras code, which AutoGraph would convert again
    in every process that did not train (a node of the Airflow, Kubeflow or Beam runners runs alone
    in its process): ``skip_autograph_for_graph_safe_libraries`` as for the Trainer.
    """
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tfx_bsl.public import tfxio

    from mlpipe.components.keras2 import skip_autograph_for_graph_safe_libraries
    from mlpipe.io.beam import beam_pipeline_options, local_worker_processes

    skip_autograph_for_graph_safe_libraries()

    run_token = uuid.uuid4().hex
    named_dirs = list(model_dirs.items())
    if baseline_dir is not None:
        named_dirs.append((tfma.BASELINE_KEY, baseline_dir))
    models = []
    for name, directory in named_dirs:
        _set_model_type(eval_config, name, directory)
        shared = tfma.default_eval_shared_model(directory, eval_config=eval_config, model_name=name)
        models.append(_reuse_models(shared, run_token))
    schema = read_schema(os.path.join(schema_uri, SCHEMA_FILE)) if schema_uri else None
    patterns = [os.path.join(split_dir, "*.gz") for split_dir in split_dirs]
    source = tfxio.TFExampleRecord(
        file_pattern=patterns, schema=schema, raw_record_column_name=tfma.ARROW_INPUT_COLUMN
    )
    adapter_config = None
    if schema is not None:
        adapter_config = tfxio.TensorAdapterConfig(source.ArrowSchema(), source.TensorRepresentations())
    try:
        with beam.Pipeline(options=beam_pipeline_options(beam_pipeline_args)) as pipeline:
            processes = local_worker_processes(beam_pipeline_args)
            if processes > 1:
                records = (
                    pipeline
                    | "Parts" >> beam.Create([(part, part) for part in range(processes)])
                    | "OnePartPerWorker" >> beam.GroupByKey()
                    | "ReadPart" >> beam.FlatMap(_records_of_part, split_dirs, processes)
                    | "Decode" >> source.RawRecordToRecordBatch()
                )
            else:
                records = pipeline | "ReadExamples" >> source.BeamSource()
            _ = records | "Evaluate" >> tfma.ExtractEvaluateAndWriteResults(
                eval_shared_model=models if len(models) > 1 else models[0],
                eval_config=eval_config,
                output_path=output_path,
                display_only_data_location=",".join(patterns),
                tensor_adapter_config=adapter_config,
                schema=schema,
            )
    finally:
        _release_models(run_token)


def _records_of_part(part: tuple[int, Any], split_dirs: list[str], parts: int) -> Iterator[bytes]:
    """Part ``part[0]`` of ``parts`` of the splits' records: every ``parts``-th batch of them.

    The FnApiRunner runs a stage on its worker processes by dividing the stage's input between
    them, grouped keys in turn; TFMA's reading stage has a single input element, so one worker
    would evaluate everything. Each worker instead gets one key (a part) and reads the splits'
    files itself, keeping its part's batches: nothing but the part numbers passes through the
    runner (its buffers would hold every record between stages), and inflating and skipping the
    other parts' records costs microseconds a record against TFMA's ~0.7 ms."""
    from mlpipe.io.example_stream import iter_serialized_examples

    index = part[0]
    for split_dir in split_dirs:
        for number, batch in enumerate(iter_serialized_examples(split_dir, _PART_BATCH_RECORDS)):
            if number % parts == index:
                yield from batch


# Models loaded during one ``_run_tfma`` call: (run token, model name, thread id) -> model.
_LOADED_MODELS: dict[tuple[str, str, int], Any] = {}
_LOADED_MODELS_LOCK = threading.Lock()


def _reuse_models(shared_model: Any, run_token: str) -> Any:
    """``shared_model`` whose loader returns one model per thread for the run ``run_token``.

    For a Keras model TFMA computes the model's compiled metrics and loss in a combiner that, to
    avoid sharing a model between threads, loads the whole SavedModel again in every ``setup()`` —
    once per combine phase and stage, each a full Keras load and a new ``tf.function`` trace: most
    of the Evaluator's time (seven loads on the taxi model). A combiner only resets, updates and
    reads the metrics' variables within one call, so combiners of the same thread can share a
    model; threads still never do. The cache is module-level because Beam pickles the loader;
    workers in other processes find it empty and load as before.
    """
    import tensorflow_model_analysis as tfma

    loader = shared_model.model_loader
    if loader is None:
        return shared_model
    construct = functools.partial(
        _load_once_per_thread, loader.construct_fn, (run_token, shared_model.model_name)
    )
    return shared_model._replace(model_loader=tfma.types.ModelLoader(construct, tags=loader.tags))


def _load_once_per_thread(construct_fn: Any, key: tuple[str, str]) -> Any:
    thread_key = (*key, threading.get_ident())
    with _LOADED_MODELS_LOCK:
        model = _LOADED_MODELS.get(thread_key)
    if model is None:
        model = construct_fn()
        with _LOADED_MODELS_LOCK:
            model = _LOADED_MODELS.setdefault(thread_key, model)
    return model


def _release_models(run_token: str) -> None:
    """Forget the run's models, so a long-lived process does not keep every evaluated model."""
    with _LOADED_MODELS_LOCK:
        for key in [key for key in _LOADED_MODELS if key[0] == run_token]:
            del _LOADED_MODELS[key]


def _is_candidate(baseline: list[Artifact] | None, models: list[Artifact] | None) -> bool:
    """Whether the resolved baseline is one of the very model artifacts being evaluated, or the
    copy of one that an earlier selection among candidates made (its ``selected_model_id``)."""
    if not (baseline and models):
        return False
    ids = {model.id for model in models if model.id is not None}
    return baseline[0].id in ids or baseline[0].get_custom_property("selected_model_id") in ids


def _is_model_input(key: str) -> bool:
    return key == "model" or key.startswith(CANDIDATE_INPUT_PREFIX)


def _candidates_spec(names: list[str]) -> ComponentSpec:
    """An Evaluator node's spec with candidates: ``candidate_<name>`` inputs and a ``model`` output."""
    spec = Evaluator.SPEC
    inputs = {key: value for key, value in spec.inputs.items() if key != "model"}
    inputs.update({CANDIDATE_INPUT_PREFIX + name: InputSpec(Model) for name in names})
    return ComponentSpec(
        inputs=inputs,
        outputs={**spec.outputs, "model": Model},
        parameters={
            **spec.parameters,
            "candidates": ParameterSpec(list),
            "model_selection": ParameterSpec(dict),
        },
    )


def _evaluate_candidates(ctx: ExecutionContext) -> None:
    """One TFMA run over every candidate (and the baseline), a verdict per candidate, the selection."""
    names = list(ctx.parameters["candidates"])
    rule = ModelSelection.from_dict(ctx.node_id, ctx.parameters["model_selection"])
    models: dict[str, Artifact] = {}
    for name in names:
        model = ctx.input(CANDIDATE_INPUT_PREFIX + name)
        assert model is not None  # a required input
        models[name] = model
    baseline = ctx.input("baseline_model")
    examples = ctx.input("examples")
    assert examples is not None
    if baseline is not None and _is_candidate([baseline], list(models.values())):
        ctx.log.info("the baseline is one of the candidates: judging them on value thresholds only")
        baseline = None
    schema = ctx.input("schema")
    evaluation, blessing, selected = ctx.outputs["evaluation"], ctx.outputs["blessing"], ctx.outputs["model"]
    splits = list(ctx.parameters["example_splits"])
    eval_config = _candidates_eval_config(
        ctx.node_id, ctx.parameters["eval_config"], names, has_baseline=baseline is not None
    )
    ctx.log.info(
        "evaluating candidates %s on splits %s%s",
        ", ".join(f"{name}={model.uri}" for name, model in models.items()),
        splits,
        f" against baseline {baseline.uri}" if baseline else "",
    )
    _run_tfma(
        eval_config,
        model_dirs={name: _serving_dir(model.uri) for name, model in models.items()},
        baseline_dir=_serving_dir(baseline.uri) if baseline else None,
        split_dirs=[examples.split_uri(s) for s in check_splits(ctx.node_id, examples, splits)],
        schema_uri=schema.uri if schema else None,
        output_path=evaluation.uri,
        beam_pipeline_args=ctx.beam_pipeline_args,
    )
    _, table, majority_rate = _summarize(evaluation.uri, eval_config)
    results = _candidate_results(ctx.node_id, evaluation.uri, models, rule)
    chosen = select(results, rule)
    output = chosen or best_unblessed(results, rule)
    source = models[output.name]
    shutil.copytree(source.uri, selected.uri, dirs_exist_ok=True)
    selected.set_custom_property("selected_candidate", output.name)
    selected.set_custom_property("selected_model_uri", source.uri)
    if source.id is not None:
        selected.set_custom_property("selected_model_id", source.id)
    choice = candidates_table(results, rule, chosen.name if chosen else None)
    verdict = (
        f"selected: {chosen.name} ({rule.metric} {chosen.value:.4f}, the best blessed candidate)"
        if chosen
        else f"no candidate is blessed: NOT BLESSED (closest: {output.name})"
    )
    with open(os.path.join(evaluation.uri, SUMMARY_FILE), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    with open(os.path.join(evaluation.uri, CANDIDATES_FILE), "w", encoding="utf-8") as f:
        f.write(f"{choice}\n{verdict}\n")
    if majority_rate is not None:
        evaluation.set_custom_property("majority_class_rate", majority_rate)
    for artifact in (evaluation, blessing):
        record_candidates(artifact, results, rule, chosen.name if chosen else None)
    ctx.log.info("evaluation of candidates %s:\n%s\n\n%s\n%s", names, table, choice, verdict)
    _write_blessing(blessing, chosen is not None, selected, baseline)
    blessing.set_custom_property("current_model", source.uri)  # what was evaluated; the id is the copy's


def _candidates_eval_config(
    node_id: str, config: dict[str, Any], names: list[str], has_baseline: bool
) -> Any:
    """The EvalConfig with one named model spec per candidate (+ the baseline).

    The user's config has either one unnamed candidate spec, used for every candidate (they share
    the Transform, so the same signature and label apply), or one spec named after each candidate.
    """
    import tensorflow_model_analysis as tfma

    parsed = _parse_eval_config(node_id, config)
    specs = [spec for spec in parsed.model_specs if not spec.is_baseline]
    named = {spec.name: spec for spec in specs if spec.name}
    if named and set(named) != set(names):
        raise DefinitionError(
            f"{node_id}: eval_config model_specs are named {sorted(named)}, the candidates {names}; "
            "name one spec per candidate, or give one unnamed spec for all"
        )
    if not named and len(specs) > 1:
        raise DefinitionError(
            f"{node_id}: eval_config has {len(specs)} unnamed model_specs; give one for all"
        )
    template = specs[0] if specs else tfma.ModelSpec()
    del parsed.model_specs[:]
    for name in [*names, tfma.BASELINE_KEY] if has_baseline else names:
        spec = parsed.model_specs.add()
        spec.CopyFrom(named.get(name, template))
        spec.name = name
        spec.is_baseline = name == tfma.BASELINE_KEY
        if not spec.signature_name:
            spec.signature_name = DEFAULT_SIGNATURE
    _add_mean_label(parsed)
    return tfma.utils.update_eval_config_with_defaults(
        parsed, has_baseline=has_baseline, rubber_stamp=not has_baseline
    )


def _candidate_results(
    node_id: str, output_path: str, models: Mapping[str, Artifact], rule: ModelSelection
) -> list[CandidateResult]:
    """Each candidate's verdict (no failed threshold under its model name) and its value of the
    selection metric on the overall slice, from the evaluation TFMA wrote."""
    import tensorflow_model_analysis as tfma

    validation = tfma.load_validation_result(output_path)
    failures: dict[str, list[str]] = {}
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            key = tfma.metrics.MetricKey.from_proto(failure.metric_key)
            name = f"{key.name} (vs baseline)" if key.is_diff else key.name
            failures.setdefault(key.model_name, []).append(f"{name} on {_slice_name(per_slice.slice_key)}")
    # a verdict that names no model fails every candidate
    general = ""
    if not validation.validation_ok and not failures:
        general = "TFMA blessed nothing: " + (
            "eval_config has no thresholds"
            if validation.missing_thresholds
            else f"slices without examples: {list(validation.missing_slices)}"
            if validation.missing_slices
            else "see its validation result"
        )
    overall: dict[str, float] = {}
    available: set[str] = set()
    for metrics in tfma.load_metrics(output_path):
        if tfma.slicer.deserialize_slice_key(metrics.slice_key):
            continue
        for item in metrics.metric_keys_and_values:
            key = tfma.metrics.MetricKey.from_proto(item.key)
            if key.is_diff or key.model_name not in models or not item.value.HasField("double_value"):
                continue
            available.add(key.name)
            if key.name == rule.metric and not key.output_name and key.sub_key is None:
                overall[key.model_name] = item.value.double_value.value
    missing = [name for name in models if name not in overall]
    if missing:
        raise DataError(
            f"{node_id}: model_selection metric '{rule.metric}' is not in the evaluation of {missing}; "
            f"metrics on the overall slice: {sorted(available)} (add it to eval_config's metrics_specs)"
        )
    return [
        CandidateResult(
            name=name,
            model_id=model.id,
            model_uri=model.uri,
            blessed=not general and name not in failures,
            value=overall[name],
            failures="; ".join(failures.get(name, [])) or general,
        )
        for name, model in models.items()
    ]


def _model_name(eval_config: Any) -> str:
    return next(spec.name for spec in eval_config.model_specs if not spec.is_baseline)


def _write_blessing(blessing: Any, blessed: bool, model: Any, baseline: Any) -> None:
    os.makedirs(blessing.uri, exist_ok=True)
    open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.set_custom_property("blessed", 1 if blessed else 0)
    blessing.set_custom_property("current_model", model.uri)
    if model.id is not None:
        blessing.set_custom_property("current_model_id", model.id)
    if baseline is not None:
        blessing.set_custom_property("baseline_model", baseline.uri)
        if baseline.id is not None:
            blessing.set_custom_property("baseline_model_id", baseline.id)


def _summarize(output_path: str, eval_config: Any) -> tuple[bool, str, float | None]:
    """TFMA's verdict, a table of the candidate's scalar metrics, and the overall majority-class rate.

    Columns: metric, slice, value, trivial (the value of a model that learned nothing, where known:
    see ``_trivial_value``), margin (value - trivial), threshold, result. Rows with a threshold say
    ``pass`` or ``FAIL``; diff rows (``metric (vs baseline)``) are the change against the baseline
    that change thresholds judge. With several candidates a first column names the model.
    """
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.metrics import metric_specs

    validation = tfma.load_validation_result(output_path)
    failed = {
        (_slice_name(per_slice.slice_key), tfma.metrics.MetricKey.from_proto(failure.metric_key))
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    }
    thresholds = metric_specs.metric_thresholds_from_metrics_specs(
        eval_config.metrics_specs, eval_config=eval_config
    )
    several = sum(not spec.is_baseline for spec in eval_config.model_specs) > 1
    rows = []
    majority_rate = None
    for metrics in tfma.load_metrics(output_path):
        slice_key = tfma.slicer.deserialize_slice_key(metrics.slice_key)
        slice_name = tfma.slicer.stringify_slice_key(slice_key)
        values = {
            tfma.metrics.MetricKey.from_proto(item.key): item.value.double_value.value
            for item in metrics.metric_keys_and_values
            if item.value.HasField("double_value")
        }
        # per (model, output, class): the model's compiled accuracy and TFMA's share one mean label
        mean_labels = {
            (key.model_name, key.output_name, key.sub_key): value
            for key, value in values.items()
            if key.name == MEAN_LABEL and not key.is_diff
        }
        for key, value in values.items():
            if key.model_name == tfma.BASELINE_KEY or (key.is_diff and key.name == MEAN_LABEL):
                continue
            mean_label = mean_labels.get((key.model_name, key.output_name, key.sub_key))
            trivial = None if key.is_diff else _trivial_value(key.name, mean_label)
            if key.name == "binary_accuracy" and not slice_key and trivial is not None and not several:
                majority_rate = trivial
            limits = [_threshold_text(t) for spec, t in thresholds.get(key, []) if _applies(spec, slice_key)]
            result = "FAIL" if (slice_name, key) in failed else ("pass" if limits else "")
            name = f"{key.name} (vs baseline)" if key.is_diff else key.name
            rows.append((
                *((key.model_name,) if several else ()), name, slice_name, f"{value:.4f}",
                "" if trivial is None else f"{trivial:.4f}",
                "" if trivial is None else f"{value - trivial:+.4f}",
                "; ".join(limits), result,
            ))  # fmt: skip
    first = 1 if several else 0  # the metric's column
    rows.sort(key=lambda row: (row[first + 1] != "Overall", row[first + 1], row[:first], row[first]))
    header = ("metric", "slice", "value", "trivial", "margin", "threshold", "result")
    rows.insert(0, ("model", *header) if several else header)
    lines = _table(rows)
    if not validation.validation_ok and not failed:
        lines.append(
            f"not blessed: {validation.validation_details or validation.missing_slices or 'see validations'}"
        )
    return validation.validation_ok, "\n".join(lines), majority_rate


def _trivial_value(metric_name: str, mean_label: float | None) -> float | None:
    """The metric's value for a model that learned nothing, or None when there is no such constant.

    A constant score ranks nothing: AUC 0.5. Answering the majority class for every example is
    right for the majority's share of examples: accuracy = max(mean label, 1 - mean label) for 0/1
    labels (TFMA's ``MeanLabel`` on the same slice).
    """
    if metric_name == "auc":
        return 0.5
    if metric_name == "binary_accuracy" and mean_label is not None:
        return max(mean_label, 1.0 - mean_label)
    return None


def _slice_name(slice_key_proto: Any) -> str:
    import tensorflow_model_analysis as tfma

    return tfma.slicer.stringify_slice_key(tfma.slicer.deserialize_slice_key(slice_key_proto))


def _applies(slice_spec: Any, slice_key: Any) -> bool:
    import tensorflow_model_analysis as tfma

    if slice_spec is None:
        return True
    if not isinstance(slice_spec, tfma.SlicingSpec):
        return False
    return tfma.slicer.SingleSliceSpec(spec=slice_spec).is_slice_applicable(slice_key)


def _threshold_text(threshold: Any) -> str:
    """``>= 0.5``, ``<= 0.3``, or ``change >= -1e-10 (HIGHER_IS_BETTER)`` for one TFMA threshold."""
    parts = []
    if hasattr(threshold, "lower_bound"):
        if threshold.HasField("lower_bound"):
            parts.append(f">= {threshold.lower_bound.value:g}")
        if threshold.HasField("upper_bound"):
            parts.append(f"<= {threshold.upper_bound.value:g}")
        return " and ".join(parts)
    import tensorflow_model_analysis as tfma

    direction = tfma.MetricDirection.Name(threshold.direction)
    if threshold.HasField("absolute"):
        parts.append(f"change {threshold.absolute.value:+g}")
    if threshold.HasField("relative"):
        parts.append(f"relative change {threshold.relative.value:+g}")
    return f"{' and '.join(parts)} ({direction})"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
