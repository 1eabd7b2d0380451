"""Transform's in-process analysis against TFT's own Beam pipeline, analyzer by analyzer.

The oracle is what TFX's Transform runs: ``tfxio.TFExampleRecord(...).BeamSource()`` (tfx_bsl's
batching, which Beam's ``BatchElements`` sizes by timing: 1 to 1,000 rows) into
``tft_beam.AnalyzeDataset`` on Beam's in-process ``FnApiRunner`` (named: Beam >= 2.68's default
DirectRunner would try to download Prism). mlpipe's side is Transform's own path: ``_SplitData``
(4,096-row batches) and ``tft_analysis.InProcessAnalysis``.

Every analyzer the in-process analysis claims (``tft_analysis._CLAIMED_COMBINERS`` and the
frequency vocabularies) is applied, and each analyzer's result is also returned as an output
(tiled over the rows), so comparing the two graphs' outputs on the data compares the analyzer
results themselves (quantile boundaries, mean, var, min/max, covariance, PCA...) as well as the
transformed values; vocabulary files are compared byte for byte. Two datasets: the bundled taxi
sample (6,000 trips, its empty cells as empty value lists) and generated data with empty value
lists, empty and unicode tokens, tied counts (also at a top_k cut), a constant feature, a feature
with one value in the whole dataset, huge int64s, NaN and +-inf.
"""

from __future__ import annotations

import csv
import filecmp
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).parents[2]
TAXI_CSV = REPO / "examples" / "data" / "chicago_taxi.csv"

FLOAT, INT, BYTES = "FLOAT", "INT", "BYTES"


def make_preprocessing_fn(
    x: str, y: str, tokens: str, key: str, weight: str, big: str, extra_floats: tuple[str, ...] = ()
):
    """A preprocessing_fn applying every claimed analyzer to the named features (all variable
    length: a missing or empty cell is an empty value list). ``x``, ``y``, ``weight``: floats
    (at most one per row); ``tokens``: strings (any number per row); ``key``: a string per row;
    ``big``: int64s (at most one per row); ``extra_floats``: floats reduced with min, max, mean,
    var, quantiles and z-scored (edge cases: constant, single value, NaN, inf)."""

    def preprocessing_fn(inputs):
        import tensorflow as tf
        import tensorflow_transform as tft

        rows = tf.shape(inputs[key], out_type=tf.int64)[0]

        def dense(sparse, default):
            """One value per row, ``default`` where the list is empty (as the taxi module does)."""
            shaped = tf.SparseTensor(sparse.indices, sparse.values, [sparse.dense_shape[0], 1])
            return tf.reshape(tf.sparse.to_dense(shaped, default), [-1])

        def each_row(value):
            """An analyzer's result repeated on every row, to compare it as an output."""
            return tf.tile(tf.reshape(value, [1, -1]), [rows, 1])

        xs, ys, w = dense(inputs[x], 0.0), dense(inputs[y], 0.0), dense(inputs[weight], 0.0)
        keys = dense(inputs[key], "")
        tokens_in, big_in = inputs[tokens], inputs[big]
        token_ids = tft.compute_and_apply_vocabulary(tokens_in, num_oov_buckets=1, vocab_filename="tokens")
        tft.vocabulary(tokens_in, store_frequency=True, vocab_filename="tokens_counts")
        tft.vocabulary(tokens_in, fingerprint_shuffle=True, vocab_filename="tokens_shuffled")
        tft.vocabulary(tokens_in, file_format="tfrecord_gzip", vocab_filename="tokens_gz")
        tft.vocabulary(keys, weights=w, store_frequency=True, vocab_filename="keys_weighted_counts")
        quantiles, boundaries = tft.histogram(inputs[x].values, boundaries=6)
        outputs = {
            "x_z": tft.scale_to_z_score(xs),
            "x_z_sparse": tft.scale_to_z_score(inputs[x]),
            "x_mean": each_row(tft.mean(inputs[x].values)),
            "x_var": each_row(tft.var(inputs[x].values)),
            "x_min": each_row(tft.min(inputs[x])),
            "x_max": each_row(tft.max(inputs[x])),
            "x_sum": each_row(tft.sum(inputs[x].values)),
            "x_size": each_row(tft.size(inputs[x].values)),
            "x_01": tft.scale_to_0_1(xs),
            "x_quantiles": each_row(tft.quantiles(inputs[x].values, num_buckets=10, epsilon=0.01)),
            "x_bucket": tft.bucketize(xs, num_buckets=5),
            "x_histogram": each_row(quantiles),
            "x_histogram_boundaries": each_row(boundaries),
            "xy_covariance": each_row(tft.covariance(tf.stack([xs, ys], axis=1), dtype=tf.float32)),
            "xy_pca": each_row(tft.pca(tf.stack([xs, 3.0 * ys], axis=1), output_dim=2, dtype=tf.float32)),
            "token_id": token_ids,
            "token_top3": tft.compute_and_apply_vocabulary(tokens_in, top_k=3, vocab_filename="tokens_top3"),
            "token_frequent": tft.compute_and_apply_vocabulary(
                tokens_in, frequency_threshold=5, vocab_filename="tokens_frequent"
            ),
            "key_weighted": tft.compute_and_apply_vocabulary(keys, weights=w, vocab_filename="keys_weighted"),
            "key_top2": tft.compute_and_apply_vocabulary(keys, top_k=2, vocab_filename="keys_top2"),
            "key_top2_weighted": tft.compute_and_apply_vocabulary(
                keys, weights=w, top_k=2, vocab_filename="keys_top2_weighted"
            ),
            "big_id": tft.compute_and_apply_vocabulary(big_in, top_k=5, vocab_filename="big_top5"),
            "big_min": each_row(tft.min(big_in)),
            "big_max": each_row(tft.max(big_in)),
            "x_z_per_key": tft.scale_to_z_score_per_key(xs, keys),
            "x_01_per_key": tft.scale_by_min_max_per_key(
                xs, keys, key_vocabulary_filename="x_min_max_per_key"
            ),
            "x_bucket_per_key": tft.bucketize_per_key(xs, keys, num_buckets=3),
            "key_count": each_row(tft.count_per_key(keys)[1]),
            # tft.experimental's analyzers that the in-process analysis claims (its sums)
            "token_document_frequency": tft.experimental.document_frequency(token_ids, vocab_size=64),
            "token_idf": tft.experimental.idf(token_ids, vocab_size=64),
        }
        for name in extra_floats:
            values = inputs[name].values
            outputs.update({
                f"{name}_min": each_row(tft.min(values)),
                f"{name}_max": each_row(tft.max(values)),
                f"{name}_mean": each_row(tft.mean(values)),
                f"{name}_var": each_row(tft.var(values)),
                f"{name}_quantiles": each_row(tft.quantiles(values, num_buckets=4, epsilon=0.01)),
                f"{name}_z": tft.scale_to_z_score(inputs[name]),
            })  # fmt: skip
        return outputs

    return preprocessing_fn


# --- data ----------------------------------------------------------------------------------------


def _schema(types: dict[str, str]):
    """Every feature variable-length, as a schema without shapes or presence says."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name, kind in types.items():
        schema.feature.add(name=name, type=schema_pb2.FeatureType.Value(kind))
    return schema


def _example(row: dict, types: dict[str, str]) -> bytes:
    import tensorflow as tf

    feature = {}
    for name, values in row.items():
        if types[name] == FLOAT:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        elif types[name] == INT:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


TAXI_TYPES = {
    "fare": FLOAT, "trip_miles": FLOAT, "tips": FLOAT, "company": BYTES, "payment_type": BYTES,
    "dropoff_census_tract": INT,
}  # fmt: skip


TAXI_ROWS = 6000  # two in-process batches, Beam's several; the whole 15k sample takes 2.5x longer


def taxi_records() -> list[bytes]:
    """The first ``TAXI_ROWS`` trips of the bundled sample; an empty cell is an empty value list
    (as TFX writes it)."""
    with open(TAXI_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:TAXI_ROWS]
    parse = {FLOAT: float, INT: lambda v: int(float(v)), BYTES: str.encode}
    return [
        _example(
            {name: [parse[kind](row[name])] if row[name] else [] for name, kind in TAXI_TYPES.items()},
            TAXI_TYPES,
        )
        for row in rows
    ]


GENERATED_TYPES = {
    "x": FLOAT, "y": FLOAT, "w": FLOAT, "tok": BYTES, "key": BYTES, "big": INT,
    "const": FLOAT, "single": FLOAT, "nan": FLOAT, "inf": FLOAT,
}  # fmt: skip

TOKENS = [b"a", b"b", b"c", b"d", b"", "é".encode(), "日本".encode(), b" space ", b"e"]


def generated_records(rows: int = 5000, seed: int = 7) -> list[bytes]:
    """Edge cases: ``x`` missing in every 7th row, ``tok`` 0-3 tokens per row from a list where
    "a", "b" and "c" tie (also at the top_k=3 cut with "d") and include "", unicode and spaces;
    ``key`` four values of equal counts (top_k=2 cuts inside the tie), tied by weight in pairs; ``big`` int64s near the limits with ties (not -2**63 itself: TFT
    computes a minimum as the maximum of negated values, and -(-2**63) overflows, so on Beam
    the minimum then depends on the batches; see docs/contracts.md); ``const`` always 7;
    ``single`` in one row only; ``nan`` with NaNs; ``inf`` with +-inf."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        row = {
            "x": [] if i % 7 == 0 else [float(rng.gamma(2.0, 3.0))],
            "y": [float(rng.normal())],
            "w": [1.0 if i % 2 else 0.5],
            "tok": [
                TOKENS[(i + j) % 4] if j == 0 else TOKENS[int(rng.integers(0, len(TOKENS)))]
                for j in range(i % 4)
            ],  # fmt: skip
            "key": [[b"k1", b"k2", b"k3", b"k4"][i % 4]],
            "big": [[2**62, -(2**62), 2**63 - 1, -(2**63) + 1, 12345678901234, 0, 1][i % 7]] if i % 5 else [],
            "const": [7.0],
            "single": [42.5] if i == rows // 2 else [],
            "nan": [float("nan") if i % 11 == 0 else float(i % 13)],
            "inf": [float("inf") if i % 17 == 0 else (float("-inf") if i % 19 == 0 else float(i % 5))],
        }
        records.append(_example(row, GENERATED_TYPES))
    return records


# --- the two analyses --------------------------------------------------------------------------


def _write_split(records: list[bytes], directory: Path, shards: int = 1) -> None:
    """The records as ``shards`` gzipped TFRecord files (ExampleGen's sharded layout), in order."""
    import tensorflow as tf

    directory.mkdir(parents=True)
    size = -(-len(records) // shards)
    for k in range(shards):
        with tf.io.TFRecordWriter(
            str(directory / f"data_tfrecord-{k:05d}-of-{shards:05d}.gz"), options="GZIP"
        ) as writer:
            for record in records[k * size : (k + 1) * size]:
                writer.write(record)


def analyze_in_process(fn, schema, split_dir: Path, out: Path) -> None:
    """Transform's in-process path: ``_SplitData``'s batches into ``InProcessAnalysis``."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.beam.analyzer_cache import DatasetKey
    from tfx_bsl.public import tfxio

    from mlpipe.components import tft_analysis
    from mlpipe.components.transform import _SplitData

    representations = (
        tfxio.TFExampleRecord(str(split_dir / "*.gz"), schema=schema)
        .TensorAdapterConfig()
        .tensor_representations
    )
    splits = _SplitData(schema, representations, str(split_dir.parent), {"train": str(split_dir)})
    key = DatasetKey("train")
    with tft_beam.Context(temp_dir=str(out / "tmp")):
        analysis = tft_analysis.InProcessAnalysis(fn, splits.tensor_adapter_config, [key], None)
        assert analysis.unsupported is None  # every analyzer of the function is claimed
        analysis.run({key: tft_analysis.AnalysisInput(str(split_dir), splits.batches("train"))}, str(out))


def analyze_with_beam(fn, schema, split_dir: Path, out: Path) -> None:
    """TFX's way: tfx_bsl's Beam source (its own batching) into TFT's AnalyzeDataset."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public import tfxio

    source = tfxio.TFExampleRecord(str(split_dir / "*.gz"), schema=schema)
    options = PipelineOptions(["--runner=FnApiRunner"])
    with tft_beam.Context(temp_dir=str(out / "tmp")), beam.Pipeline(options=options) as pipeline:
        data = pipeline | source.BeamSource()
        transform_fn = (data, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(out))


def assert_same_analysis(here: Path, beam: Path, schema, records: list[bytes]) -> dict[str, np.ndarray]:
    """Equal vocabulary files and transformed schemas; equal outputs on ``records`` (floats to
    float32 rounding, NaN equal to NaN). Returns mlpipe's outputs."""
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import schema_utils

    here_output, beam_output = tft.TFTransformOutput(str(here)), tft.TFTransformOutput(str(beam))
    here_assets = Path(here_output.transform_savedmodel_dir) / "assets"
    beam_assets = Path(beam_output.transform_savedmodel_dir) / "assets"
    names = sorted(os.listdir(here_assets))
    assert names == sorted(os.listdir(beam_assets))
    for name in names:
        if name.endswith(".gz"):  # gzip headers differ; the records must not
            here_records = list(tf.data.TFRecordDataset(str(here_assets / name), "GZIP").as_numpy_iterator())
            beam_records = list(tf.data.TFRecordDataset(str(beam_assets / name), "GZIP").as_numpy_iterator())
            assert here_records == beam_records and here_records, name
        elif name in WEIGHTED_FREQUENCIES:
            # a weighted vocabulary sums weights per batch in float32 first: the totals written
            # beside the tokens agree to float32 rounding, as between two Beam runs (contracts.md)
            here_tokens, here_totals = _tokens_and_totals(here_assets / name)
            beam_tokens, beam_totals = _tokens_and_totals(beam_assets / name)
            assert here_tokens == beam_tokens, name
            np.testing.assert_allclose(here_totals, beam_totals, rtol=1e-6, err_msg=name)
        else:
            assert filecmp.cmp(here_assets / name, beam_assets / name, shallow=False), name
    assert here_output.transformed_metadata.schema == beam_output.transformed_metadata.schema
    features = tf.io.parse_example(records, schema_utils.schema_as_feature_spec(schema).feature_spec)
    here_values = here_output.transform_raw_features(features)
    beam_values = beam_output.transform_raw_features(features)
    assert set(here_values) == set(beam_values)
    got, differences = {}, []
    for name, value in here_values.items():
        expected = beam_values[name]
        try:
            if isinstance(value, tf.SparseTensor):
                np.testing.assert_array_equal(value.indices.numpy(), expected.indices.numpy())
                value, expected = value.values, expected.values
            got[name] = value.numpy()
            if value.dtype.is_floating:
                np.testing.assert_allclose(got[name], expected.numpy(), rtol=2e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(got[name], expected.numpy())
        except AssertionError as difference:
            differences.append(f"{name}: {difference}")
    assert not differences, "\n".join(differences)  # every differing output, not just the first
    return got


WEIGHTED_FREQUENCIES = {"keys_weighted_counts"}


def _tokens_and_totals(path: Path) -> tuple[list[bytes], list[float]]:
    lines = [line.split(b" ", 1) for line in path.read_bytes().splitlines()]
    return [token for _, token in lines], [float(total) for total, _ in lines]


def _vocabulary(graph: Path, name: str) -> list[bytes]:
    import tensorflow_transform as tft

    return tft.TFTransformOutput(str(graph)).vocabulary_by_name(name)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dataset, batch_rows, shards",
    [("taxi", 4096, 1), ("generated", 4096, 1), ("taxi", 450, 3)],
    ids=["taxi", "generated", "taxi-14-batches-3-shards"],
)
def test_every_claimed_analyzer_in_process_equals_tft_on_beam(
    dataset, batch_rows, shards, tmp_path, monkeypatch
):
    """Also over many batches read from several shards: the analyzers' accumulators (the
    quantiles' sketch included) stream through the batches as Beam's combiners merge bundles."""
    from mlpipe.components import transform

    monkeypatch.setattr(transform, "_IN_PROCESS_BATCH_ROWS", batch_rows)
    if dataset == "taxi":
        records, types = taxi_records(), TAXI_TYPES
        fn = make_preprocessing_fn(
            "fare", "trip_miles", "company", "payment_type", "tips", "dropoff_census_tract"
        )
    else:
        records, types = generated_records(), GENERATED_TYPES
        fn = make_preprocessing_fn("x", "y", "tok", "key", "w", "big", ("const", "single", "nan", "inf"))
    schema = _schema(types)
    _write_split(records, tmp_path / "train", shards)
    analyze_in_process(fn, schema, tmp_path / "train", tmp_path / "here")
    analyze_with_beam(fn, schema, tmp_path / "train", tmp_path / "beam")
    got = assert_same_analysis(tmp_path / "here", tmp_path / "beam", schema, records)

    # the comparison is not vacuous: the analyzers saw the data (independent numpy checks)
    assert got["x_size"][0, 0] == sum(
        1 for r in records if _floats(r, "x" if dataset == "generated" else "fare")
    )
    assert len(_vocabulary(tmp_path / "here", "tokens_top3")) == 3
    if dataset == "generated":
        assert len(records) == 5000
        assert got["const_var"][0, 0] == 0.0 and got["const_min"][0, 0] == 7.0
        np.testing.assert_array_equal(got["const_quantiles"][0], [7.0, 7.0, 7.0])
        assert got["single_mean"][0, 0] == 42.5 and got["single_var"][0, 0] == 0.0
        assert got["inf_max"][0, 0] == np.inf and got["inf_min"][0, 0] == -np.inf
        assert got["big_max"][0, 0] == 2**63 - 1 and got["big_min"][0, 0] == -(2**63) + 1
        assert _vocabulary(tmp_path / "here", "keys_top2") == [b"k4", b"k3"]  # ties: larger token first
        tokens = _vocabulary(tmp_path / "here", "tokens")
        assert {"é".encode(), "日本".encode(), b" space "} <= set(tokens) and b"" not in tokens
    else:
        fares = [v for r in records for v in _floats(r, "fare")]
        np.testing.assert_allclose(got["x_mean"][0, 0], np.mean(fares), rtol=1e-5)
        np.testing.assert_allclose(got["x_var"][0, 0], np.var(fares), rtol=1e-4)
        assert got["x_max"][0, 0] == np.float32(max(fares))


def _floats(record: bytes, name: str) -> list[float]:
    import tensorflow as tf

    return list(tf.train.Example.FromString(record).features.feature[name].float_list.value)
