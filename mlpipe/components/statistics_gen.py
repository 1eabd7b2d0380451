"""StatisticsGen: Examples -> ExampleStatistics (TFDV's ``DatasetFeatureStatisticsList`` per split).

Writes ``Split-<name>/FeatureStats.pb`` as TFX does, so ``tfdv.load_stats_binary`` and TFX's
visualizations open it. A split is summarized in this process by TFDV's own statistics
generators, streamed a record batch at a time (:mod:`mlpipe.io.example_batches`: the
ExampleGen's Arrow copy when there is one, else the decoded records) in bounded memory and on
every core for large splits; with ``beam_pipeline_args`` naming a runner, TFDV's Beam transform
does the work there instead.
"""

from __future__ import annotations

import os
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DefinitionError
from mlpipe.types.standard import Examples, ExampleStatistics

STATS_FILE = "FeatureStats.pb"

# The StatsOptions fields a pipeline may set; the rest keep TFDV's defaults.
STATS_OPTION_FIELDS = frozenset(
    {
        "num_top_values",
        "num_rank_histogram_buckets",
        "num_values_histogram_buckets",
        "num_histogram_buckets",
        "num_quantiles_histogram_buckets",
        "epsilon",
        "weight_feature",
        "label_feature",
        "sample_rate",
        "enable_semantic_domain_stats",
    }
)


def check_stats_options(stats_options: dict[str, Any] | None) -> dict[str, Any]:
    unknown = set(stats_options or {}) - STATS_OPTION_FIELDS
    if unknown:
        raise DefinitionError(
            f"StatisticsGen: unknown stats_options {sorted(unknown)}; supported: {sorted(STATS_OPTION_FIELDS)}"
        )
    return dict(stats_options or {})


class StatisticsGen(Component):
    """Statistics of every split, in this process in bounded memory unless a Beam runner is named.

    ``beam_threshold_rows`` (default None) is kept for pipelines written for the in-memory path
    that switched to Beam above it: set, a split of more rows (or of an unknown count) still goes
    to Beam. Left unset, only ``beam_pipeline_args`` naming a ``--runner`` choose Beam: the
    streaming path takes ~20x less CPU per row than TFDV's Beam transform on one machine (bench/
    statistics_streaming.py: 1.9-2.7 CPU s per 1M rows at 1M-10M rows, Beam 40 at 1M), and both grow
    linearly, so no size makes Beam on the in-process runner worth it.
    """

    SPEC = ComponentSpec(
        inputs={"examples": Examples},
        outputs={"statistics": ExampleStatistics},
        parameters={
            "stats_options": ParameterSpec(dict, default=None),
            "beam_threshold_rows": ParameterSpec(int, default=None),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_stats_options(self.parameters["stats_options"])

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow_data_validation as tfdv

        examples = ctx.input("examples")
        assert examples is not None
        options = tfdv.StatsOptions(**check_stats_options(ctx.parameters["stats_options"]))
        threshold = ctx.parameters["beam_threshold_rows"]
        out = ctx.outputs["statistics"]
        for split in examples.split_names:
            rows = examples.get_custom_property(f"num_rows_{split}")
            path = os.path.join(out.split_uri(split), STATS_FILE)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if uses_beam(ctx.beam_pipeline_args, threshold, rows):
                statistics_with_beam(examples.split_uri(split), options, path, ctx.beam_pipeline_args)
                ctx.log.info("split %s: statistics with Beam", split)
                continue
            workers = statistics_workers(rows)
            stats = statistics_in_process(examples.uri, split, options, workers)
            with open(path, "wb") as f:
                f.write(stats.SerializeToString())
            ctx.log.info(
                "split %s: statistics of %d rows in process (%d worker(s))",
                split,
                stats.datasets[0].num_examples if stats.datasets else 0,
                workers,
            )
        out.set_property("span", examples.get_property("span", 0))
        out.split_names = examples.split_names


def uses_beam(beam_pipeline_args: list[str], beam_threshold_rows: int | None, rows: int | None) -> bool:
    """Whether a split of ``rows`` rows (None: unknown) goes to TFDV's Beam transform: when the
    arguments name a runner (the user asks for Beam: Dataflow, Flink, Spark, Portable...), or a
    pipeline still sets ``beam_threshold_rows`` and the split is larger or of unknown size."""
    from mlpipe.io.beam import names_runner

    if names_runner(beam_pipeline_args):
        return True
    return beam_threshold_rows is not None and (rows is None or rows > beam_threshold_rows)


# A second process costs ~0.1 CPU s (a fork, pickled accumulators, a merge; bench/statistics_streaming.py on
# 1M rows: 2.35 CPU s in two processes, 2.26 in one); below this many rows, ~1 s of work on one
# core, there is little to win.
PARALLEL_MIN_ROWS = 500_000


def statistics_workers(rows: int | None) -> int:
    """Processes to summarize a split of ``rows`` rows (None: unknown) with: every core this
    process may use for a large split, one for a small one or where processes cannot fork."""
    import multiprocessing

    if rows is None or rows < PARALLEL_MIN_ROWS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def statistics_in_process(
    examples_uri: str, split: str, options: Any, workers: int = 1, batch_rows: int | None = None
) -> Any:
    """One split's ``DatasetFeatureStatisticsList``, streamed through TFDV's own combiners.

    TFDV's in-memory generators (``stats_impl.get_generators(options, in_memory=True)``, those of
    its ``generate_statistics_in_memory``) are combiners: each record batch of
    :func:`mlpipe.io.example_batches.iter_record_batches` is added to one accumulator per
    generator, so memory holds one batch and the accumulators (sketches of bounded size), and the
    cost per row does not grow with the split. With ``workers`` > 1 the split is cut into that
    many parts by rows; each forked process accumulates its part and sends its accumulators back
    pickled (Beam moves the same accumulators between workers the same way), and they are merged
    with the generators' ``merge_accumulators`` before TFDV's own compact/extract/merge of outputs.
    """
    from tensorflow_data_validation.statistics import stats_impl

    from mlpipe.io.example_batches import DEFAULT_BATCH_ROWS

    generators = stats_impl.get_generators(options, in_memory=True)
    read = (examples_uri, split, batch_rows or DEFAULT_BATCH_ROWS)
    if workers <= 1:
        accumulators = _accumulate(generators, read, 0, 1)
    else:
        partials = _accumulate_in_processes(generators, read, workers)
        accumulators = [
            generator.merge_accumulators([partial[i] for partial in partials])
            for i, generator in enumerate(generators)
        ]
    return stats_impl.extract_statistics_output(accumulators, generators)


def _accumulate(generators: list[Any], read: tuple[str, str, int], part: int, parts: int) -> list[Any]:
    """Part ``part`` of ``parts`` of a split (``read``: examples URI, split, rows per batch)
    added, batch by batch, to fresh accumulators."""
    from mlpipe.io.example_batches import iter_record_batches

    for generator in generators:
        generator.setup()
    accumulators = [generator.create_accumulator() for generator in generators]
    for batch in iter_record_batches(*read, part, parts):
        accumulators = [
            generator.add_input(accumulator, batch)
            for generator, accumulator in zip(generators, accumulators, strict=True)
        ]
    return accumulators


def _accumulate_in_processes(generators: list[Any], read: tuple[str, str, int], parts: int) -> list[Any]:
    """Parts 1.. of a split accumulated by forked processes while this one does part 0.

    Fork, not spawn: a child shares the parent's imported TFDV (a fresh interpreter would pay
    ~6 s to import it) and only computes and sends back its pickled accumulators. A child's
    failure (a bad shard: DataError) is sent back and raised here.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    children = []
    for part in range(1, parts):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_accumulate_child,
            args=(sender, generators, read, part, parts),
            name=f"StatisticsGen-part-{part}",
        )
        child.start()
        sender.close()
        children.append((child, receiver))
    try:
        partials = [_accumulate(generators, read, 0, parts)]
        for child, receiver in children:
            try:
                ok, value = receiver.recv()
            except EOFError:
                child.join()
                ok, value = False, RuntimeError(f"{child.name} died with exit code {child.exitcode}")
            if not ok:
                raise value
            partials.append(value)
        return partials
    finally:
        for child, receiver in children:
            receiver.close()
            if child.is_alive():  # this process failed first: its children's work is moot
                child.terminate()
            child.join()


def _accumulate_child(
    sender: Any, generators: list[Any], read: tuple[str, str, int], part: int, parts: int
) -> None:
    try:
        sender.send((True, _accumulate(generators, read, part, parts)))
    except BaseException as e:  # noqa: BLE001  (any failure goes to the parent, which raises it)
        sender.send((False, e))
    finally:
        sender.close()


def statistics_with_beam(
    split_dir: str, options: Any, output_path: str, beam_pipeline_args: list[str]
) -> None:
    """TFDV's Beam transform over one split, with the pipeline's Beam arguments."""
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    from mlpipe.io.beam import beam_pipeline_options
    from mlpipe.io.examples import example_files

    example_files(split_dir)  # a clear error when the split has no files
    source = tfxio.TFExampleRecord(file_pattern=os.path.join(split_dir, "*.gz"))
    with beam.Pipeline(options=beam_pipeline_options(beam_pipeline_args)) as p:
        _ = (
            p
            | "Read" >> source.BeamSource()
            | "Stats" >> tfdv.GenerateStatistics(options)
            | "Write" >> tfdv.WriteStatisticsToBinaryFile(output_path)
        )
