"""StatisticsGen: Examples -> ExampleStatistics (TFDV's ``DatasetFeatureStatisticsList`` per split).

Writes ``Split-<name>/FeatureStats.pb`` as TFX does, so ``tfdv.load_stats_binary`` and TFX's
visualizations open it. Data that fits in memory is summarized in-process by TFDV's in-memory
generator (no Beam pipeline to start), from the ExampleGen's Arrow copy of the split when there is
one, else from the decoded records; larger data goes through TFDV's Beam transform with the
pipeline's ``beam_pipeline_args``.
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
    """Statistics of every split; in memory up to ``beam_threshold_rows`` rows per split, else Beam
    (always Beam when ``beam_pipeline_args`` name a runner)."""

    SPEC = ComponentSpec(
        inputs={"examples": Examples},
        outputs={"statistics": ExampleStatistics},
        parameters={
            "stats_options": ParameterSpec(dict, default=None),
            "beam_threshold_rows": ParameterSpec(int, default=1_000_000),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_stats_options(self.parameters["stats_options"])

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow_data_validation as tfdv

        from mlpipe.io.beam import names_runner

        examples = ctx.input("examples")
        assert examples is not None
        options = tfdv.StatsOptions(**check_stats_options(ctx.parameters["stats_options"]))
        threshold = ctx.parameters["beam_threshold_rows"]
        out = ctx.outputs["statistics"]
        for split in examples.split_names:
            rows = examples.get_custom_property(f"num_rows_{split}")
            path = os.path.join(out.split_uri(split), STATS_FILE)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Examples from another producer may not record row counts: Beam handles any size. A
            # named runner (Flink, Spark, Dataflow) was asked for: the data work goes there.
            if rows is not None and rows <= threshold and not names_runner(ctx.beam_pipeline_args):
                stats = statistics_in_memory(examples.uri, split, options)
                with open(path, "wb") as f:
                    f.write(stats.SerializeToString())
                ctx.log.info("split %s: statistics of %d rows in memory", split, rows)
            else:
                statistics_with_beam(examples.split_uri(split), options, path, ctx.beam_pipeline_args)
                ctx.log.info("split %s: statistics with Beam", split)
        out.set_property("span", examples.get_property("span", 0))
        out.split_names = examples.split_names


def statistics_in_memory(examples_uri: str, split: str, options: Any) -> Any:
    """One split as one Arrow RecordBatch through TFDV's in-memory generator.

    The batch is the ExampleGen's columnar copy when there is one (the same values, ten times
    faster than decoding; see :func:`mlpipe.io.examples.columnar_path`), else the decoded records.
    """
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    from mlpipe.io import examples as io

    columnar = io.columnar_path(examples_uri, split)
    if os.path.isfile(columnar):
        batch = io.read_columnar_batch(columnar)
    else:
        split_dir = os.path.join(examples_uri, f"Split-{split}")
        batch = ExamplesToRecordBatchDecoder().DecodeBatch(io.read_examples(split_dir))
    return stats_impl.generate_statistics_in_memory(batch, options)


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
