"""StatisticsGen's streamed statistics against TFDV's own answers on the same Examples.

mlpipe adds a split to TFDV's generators a record batch at a time, in one or several processes
whose accumulators are merged. The oracles are TFDV's: ``generate_statistics_in_memory`` (what
``tfdv.validate_instance`` uses; TFDV 1.16 does not export it at the top) of
the whole split decoded by tfx_bsl from the TFRecords in one batch, and TFDV's Beam pipeline
(``generate_statistics_from_tfrecord``) on the same files.

Tolerance. Counts, presence, min/max, top-k values and counts, unique counts, value-count
histograms: equal. Sums (mean, std_dev, avg_length, weighted totals) differ by float rounding of
another addition order: 1e-9 relative. Quantiles and the histograms built from them come from
tfx_bsl's quantiles sketch: exact (so compared at 1e-9) while a sketch holds every value, as on
these few thousand rows; beyond, merged part sketches answer within the sketch's guarantee, a
rank error of at most ``epsilon`` times the row count, which the last test checks against sorted
values on 400k rows.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

import pytest

from mlpipe.errors import DataError
from mlpipe.io import examples as io
from tests.support.example_splits import write_split
from tests.support.oracles import differences

DATA = Path(__file__).parents[2] / "examples" / "data"
sys.path.insert(0, str(DATA))
import generate  # noqa: E402  (examples/data/generate.py is a script, not a package)

OPTIONS = {
    "num_top_values": 3,
    "num_rank_histogram_buckets": 4,
    "num_values_histogram_buckets": 4,
    "num_histogram_buckets": 5,
    "num_quantiles_histogram_buckets": 4,
    "epsilon": 0.001,
    "weight_feature": "w",
    "enable_semantic_domain_stats": True,
}


def _taxi(rows: int):
    """Generated taxi rows typed as CsvExampleGen types them (empty cells as empty lists), with a
    weight column."""
    import pyarrow as pa

    frame = generate.generate_span(generate.load_taxi(), rows, seed=7)
    table = io.type_csv_columns(io.parse_csv("taxi.csv", frame.to_csv(index=False).encode()))
    return table.append_column("w", pa.array([1.0 + (k % 3) for k in range(rows)]))


def _edge(rows: int):
    """Lists, empty lists, nulls without a kind (Parquet/SQL), a column without values early on."""
    import pyarrow as pa

    return pa.table(
        {
            "i": pa.array([None if k % 4 == 1 else k % 50 for k in range(rows)], pa.int64()),
            "f": pa.array([None if k % 5 == 2 else k / 7 for k in range(rows)]),
            "s": pa.array([None if k % 3 == 0 else f"v{k % 11}é".encode() for k in range(rows)]),
            "l": pa.array(
                [[k, k + 0.5] if k % 3 else ([] if k % 2 else None) for k in range(rows)],
                pa.list_(pa.float64()),
            ),
            "late": pa.array([None] * (rows // 2) + list(range(rows - rows // 2)), pa.int64()),
            "untyped": pa.nulls(rows),
            "w": pa.array([0.5 + (k % 4) for k in range(rows)]),
        }
    )


@pytest.fixture(scope="module", params=["taxi-3-shards", "taxi-one-file", "edge-4-shards"])
def split(request, tmp_path_factory):
    uri = str(tmp_path_factory.mktemp(request.param))
    name, layout = request.param.split("-", 1)
    table = _taxi(3000) if name == "taxi" else _edge(2000)
    write_split(uri, "train", table, None if layout == "one-file" else int(layout.split("-")[0]))
    return uri


def _options(fields: dict | None):
    import tensorflow_data_validation as tfdv

    from mlpipe.components.statistics_gen import check_stats_options

    return tfdv.StatsOptions(**check_stats_options(fields))


def _tfdv_in_memory(uri: str, options):
    from tensorflow_data_validation.statistics import stats_impl
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    records = io.read_examples(os.path.join(uri, "Split-train"))
    return stats_impl.generate_statistics_in_memory(
        ExamplesToRecordBatchDecoder().DecodeBatch(records), options
    )


def _by_feature(statistics) -> dict[str, dict]:
    """Features by name as dicts, each natural-language match rate rounded to 0.05: TFDV's
    generator rates only the first 100 values of each record batch (``_CROP_AT_VALUES``, in Beam
    too), so the rate depends on where batches start; the domain it infers must still agree."""
    from google.protobuf.json_format import MessageToDict

    (dataset,) = statistics.datasets
    features = {"/".join(f.path.step): MessageToDict(f, float_precision=None) for f in dataset.features}
    for feature in features.values():
        for custom in feature.get("customStats", []):
            if custom["name"] == "natural_language_match_rate":
                custom["num"] = round(custom["num"] * 20) / 20
    return {"num_examples": dataset.num_examples, **features}


@pytest.mark.parametrize("fields", [None, OPTIONS], ids=["defaults", "options"])
@pytest.mark.parametrize(("workers", "batch_rows"), [(1, 256), (3, 333)])
def test_streamed_statistics_equal_tfdv_in_memory_on_the_whole_split(split, fields, workers, batch_rows):
    from mlpipe.components.statistics_gen import statistics_in_process

    options = _options(fields)
    mine = statistics_in_process(split, "train", options, workers, batch_rows)
    theirs = _tfdv_in_memory(split, options)
    assert mine.datasets[0].num_examples == theirs.datasets[0].num_examples >= 2000
    mine, theirs = _by_feature(mine), _by_feature(theirs)
    assert differences(mine, theirs) == []
    assert len(mine) > 6 and sum("histograms" in str(f) for f in mine.values()) > 3  # compared in full
    if fields:
        assert "weightedNumericStats" in str(mine) and "weightedStringStats" in str(mine)


def test_statistics_from_decoded_records_equal_those_from_the_columnar_copy(split, tmp_path):
    from mlpipe.components.statistics_gen import statistics_in_process

    copy = tmp_path / "no_columnar"
    shutil.copytree(split, copy)
    shutil.rmtree(copy / ".columnar")
    options = _options(None)
    decoded = statistics_in_process(str(copy), "train", options, 2, 500)
    assert differences(_by_feature(decoded), _by_feature(_tfdv_in_memory(split, options))) == []


def test_streamed_statistics_equal_tfdv_beam(split, tmp_path):
    import tensorflow_data_validation as tfdv

    from mlpipe.components.statistics_gen import statistics_in_process
    from mlpipe.io.beam import beam_pipeline_options

    options = _options(None)
    theirs = tfdv.generate_statistics_from_tfrecord(
        data_location=os.path.join(split, "Split-train", "*.gz"),
        output_path=str(tmp_path / "beam.stats"),
        stats_options=options,
        pipeline_options=beam_pipeline_options([]),
    )
    mine = statistics_in_process(split, "train", options, 2, 700)
    assert differences(_by_feature(mine), _by_feature(theirs)) == []


def test_a_bad_shard_in_a_worker_process_is_a_data_error(tmp_path):
    from mlpipe.components.statistics_gen import statistics_in_process

    write_split(str(tmp_path), "train", _edge(300), 2)
    shutil.rmtree(tmp_path / ".columnar")
    second = tmp_path / "Split-train" / "data_tfrecord-00001-of-00002.gz"
    second.write_bytes(second.read_bytes()[:-40])  # part 1 of 2 reads this shard, in the child
    with pytest.raises(DataError, match=f"{second}: truncated"):
        statistics_in_process(str(tmp_path), "train", _options(None), 2, 100)


def test_merged_quantiles_of_a_large_split_keep_the_sketch_guarantee(tmp_path):
    """On 400k values in 2 processes the sketches summarize (they no longer hold every value):
    each quantile boundary's rank in the sorted values is within epsilon * rows of its target."""
    import numpy as np
    import pyarrow as pa

    from mlpipe.components.statistics_gen import statistics_in_process

    rows, epsilon, buckets = 400_000, 0.01, 10
    values = np.random.default_rng(3).lognormal(0.0, 1.0, rows)
    write_split(str(tmp_path), "train", pa.table({"x": values}), 3)
    options = _options({"epsilon": epsilon, "num_quantiles_histogram_buckets": buckets})
    (feature,) = statistics_in_process(str(tmp_path), "train", options, 2).datasets[0].features
    (quantiles,) = [h for h in feature.num_stats.histograms if h.type == h.QUANTILES]
    ordered = np.sort(values.astype(np.float32))
    for j, bucket in enumerate(quantiles.buckets[:-1], start=1):
        rank = np.searchsorted(ordered, np.float32(bucket.high_value))
        assert abs(rank - j * rows / buckets) <= epsilon * rows, (j, rank)
    assert feature.num_stats.num_zeros == 0 and feature.num_stats.common_stats.num_non_missing == rows
    assert math.isclose(feature.num_stats.mean, float(np.mean(values.astype(np.float32))), rel_tol=1e-6)


@pytest.mark.parametrize(
    ("args", "threshold", "rows", "beam"),
    [
        ([], None, 50_000_000, False),  # any size in process: no cliff
        ([], None, None, False),  # unknown size (another producer's Examples): streamed too
        (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], None, 10, True),
        (["--runner", "DataflowRunner"], None, 10, True),
        (["--direct_num_workers=2"], None, 5_000_000, False),  # options without a runner
        ([], 1_000_000, 1_000_000, False),  # an older pipeline's threshold still applies
        ([], 1_000_000, 1_000_001, True),
        ([], 0, None, True),
    ],
)
def test_beam_only_for_a_named_runner_or_an_explicit_threshold(args, threshold, rows, beam):
    from mlpipe.components.statistics_gen import StatisticsGen, uses_beam

    assert uses_beam(args, threshold, rows) is beam
    assert StatisticsGen.SPEC.parameters["beam_threshold_rows"].default is None


def test_large_splits_use_every_core_small_ones_one():
    from mlpipe.components.statistics_gen import PARALLEL_MIN_ROWS, statistics_workers

    cores = len(os.sched_getaffinity(0))
    assert statistics_workers(PARALLEL_MIN_ROWS) == cores
    assert statistics_workers(PARALLEL_MIN_ROWS - 1) == statistics_workers(None) == 1
