"""TFT's analysis graph run in this process (``mlpipe.components.tft_analysis``) against TFT's own
Beam pipeline on the same data: the transform graphs must agree value for value.

The first tests call both directly on small generated datasets, over the analyzers the in-process
analysis implements (combiners packed and not, quantiles, vocabularies of every supported kind,
per-key combiners, two phases); the last runs the demo's taxi module through the Transform
component both ways on the head of the taxi sample.
"""

from __future__ import annotations

import csv
import filecmp
import gzip
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).parents[2]
TAXI_MODULE = REPO / "components" / "taxi_module.py"

SCHEMA = """
feature { name: "x" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "w" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "n" type: INT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "cat" type: BYTES presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "tag" type: BYTES value_count { min: 1 max: 1 } }
"""

CATEGORIES = [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]


def one_phase_fn(inputs):
    """Many analyzers, all on raw inputs: one phase, whose combiners TFT packs together."""
    import tensorflow as tf
    import tensorflow_transform as tft

    x, n, cat = inputs["x"], inputs["n"], inputs["cat"]
    x_row, cat_row = tf.reshape(x, [-1]), tf.reshape(cat, [-1])  # per-key analyzers take rank 1
    tft.vocabulary(cat, store_frequency=True, vocab_filename="cat_counts")
    tft.vocabulary(cat, fingerprint_shuffle=True, vocab_filename="cat_shuffled")
    return {
        "x_z": tft.scale_to_z_score(x),
        "x_01": tft.scale_to_0_1(x),
        "x_bucket": tft.bucketize(x, num_buckets=5),
        "n_min": n - tft.min(n),
        "cat_top": tft.compute_and_apply_vocabulary(
            cat, top_k=3, num_oov_buckets=1, vocab_filename="cat_top"
        ),
        "cat_frequent": tft.compute_and_apply_vocabulary(
            cat, frequency_threshold=40, vocab_filename="cat_frequent"
        ),
        "cat_weighted": tft.compute_and_apply_vocabulary(
            cat, weights=inputs["w"], vocab_filename="cat_weighted"
        ),
        "cat_gz": tft.compute_and_apply_vocabulary(cat, file_format="tfrecord_gzip", vocab_filename="cat_gz"),
        "cat_reserved": tft.compute_and_apply_vocabulary(
            cat, reserved_tokens=["<pad>"], vocab_filename="cat_rsv"
        ),
        "n_vocab": tft.compute_and_apply_vocabulary(n % 7, vocab_filename="n_vocab"),
        "tag_id": tft.compute_and_apply_vocabulary(inputs["tag"], vocab_filename="tag"),  # sparse
        "x_z_per_cat": tft.scale_to_z_score_per_key(x_row, cat_row),
        "x_01_per_cat": tft.scale_by_min_max_per_key(
            x_row, cat_row, key_vocabulary_filename="per_cat_min_max"
        ),
        "x_bucket_per_cat": tft.bucketize_per_key(x_row, cat_row, num_buckets=3),
    }


def one_of_each_coder_fn(inputs):
    """An analyzer for each kind of cache entry: numbers, a quantiles sketch, vocabulary counts,
    per-key accumulators."""
    import tensorflow as tf
    import tensorflow_transform as tft

    x, cat = inputs["x"], inputs["cat"]
    return {
        "x_z": tft.scale_to_z_score(x),
        "x_bucket": tft.bucketize(x, num_buckets=5),
        "cat_id": tft.compute_and_apply_vocabulary(cat, vocab_filename="cat"),
        "x_z_per_cat": tft.scale_to_z_score_per_key(tf.reshape(x, [-1]), tf.reshape(cat, [-1])),
    }


def two_phase_fn(inputs):
    """Analyzers of an analyzer's output: phase 1 (quantiles, min/max, a vocabulary) reads the
    mean that phase 0 computes; the flattened datasets feed phase 1, which TFT does not cache.

    (TFT's Beam pipeline on the FnApiRunner fails on a third phase: "watermark-pending bundles
    did not execute".)
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    centered = inputs["x"] - tft.mean(inputs["x"])
    return {
        "scaled": tft.scale_to_0_1(centered),
        "bucket": tft.bucketize(centered, num_buckets=4),
        "side_id": tft.compute_and_apply_vocabulary(
            tf.where(centered > 0, "above", "below"), vocab_filename="side"
        ),
        "cat_id": tft.compute_and_apply_vocabulary(inputs["cat"], vocab_filename="cat"),
    }


def _records(seed: int, rows: int) -> list[bytes]:
    """Serialized tf.Examples of x (gamma), w (weight), n (int), cat (skewed), tag (in some rows)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    weights = np.arange(len(CATEGORIES), 0, -1, dtype=float)
    cats = rng.choice(CATEGORIES, size=rows, p=weights / weights.sum())
    records = []
    for i in range(rows):
        feature = {
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[rng.gamma(2.0, 3.0)])),
            "w": tf.train.Feature(float_list=tf.train.FloatList(value=[rng.uniform(0.0, 2.0)])),
            "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(rng.integers(0, 100))])),
            "cat": tf.train.Feature(bytes_list=tf.train.BytesList(value=[cats[i]])),
        }
        if i % 3:
            feature["tag"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"t%d" % (i % 5)]))
        records.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return records


def _schema():
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(SCHEMA, schema_pb2.Schema())


def _decoded(records: list[bytes], batch_rows: int):
    """Record batches as Transform decodes them, and the tensor adapter config that reads them."""
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder
    from tfx_bsl.tfxio import tf_example_record
    from tfx_bsl.tfxio.tensor_adapter import TensorAdapterConfig

    schema = _schema()
    decoder = ExamplesToRecordBatchDecoder(schema.SerializeToString())
    representations = (
        tf_example_record.TFExampleBeamRecord(physical_format="inmem", schema=schema)
        .TensorAdapterConfig()
        .tensor_representations
    )
    batches = [decoder.DecodeBatch(records[i : i + batch_rows]) for i in range(0, len(records), batch_rows)]
    return batches, TensorAdapterConfig(decoder.ArrowSchema(), representations)


def _analyze_here(fn, datasets: dict, out: Path, cache_in: str | None = None, batch_rows: int = 4096):
    """The in-process analysis of ``datasets`` (key -> records); writes the graph and the cache."""
    import tensorflow_transform.beam as tft_beam

    from mlpipe.components import tft_analysis
    from mlpipe.components.transform import _updated_cache

    with tft_beam.Context(temp_dir=str(out / "tmp")):
        config = _decoded([], batch_rows)[1]
        analysis = tft_analysis.InProcessAnalysis(fn, config, list(datasets), cache_in)
        assert analysis.unsupported is None
        result = analysis.run(
            {
                key: tft_analysis.AnalysisInput(key.key, _decoded(records, batch_rows)[0])
                for key, records in datasets.items()
                if key in analysis.datasets_to_read
            },
            str(out / "graph"),
        )
        cache = _updated_cache(result.cache_read, result.cache_computed)  # as Transform writes it
        tft_analysis.write_analysis_cache(cache, str(out / "cache"))
    return result


def _beam_pipeline():
    """A pipeline on the in-process runner Transform uses."""
    import apache_beam as beam

    from mlpipe.io.beam import beam_pipeline_options

    return beam.Pipeline(options=beam_pipeline_options([]))


def _analyze_with_beam(fn, datasets: dict, out: Path) -> None:
    """TFT's Beam pipeline on the same batches; writes the graph and the cache."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam

    with tft_beam.Context(temp_dir=str(out / "tmp")), _beam_pipeline() as pipeline:
        data = {
            key: pipeline | f"Create[{key.key}]" >> beam.Create(_decoded(records, 4096)[0])
            for key, records in datasets.items()
        }
        transform_fn, cache = (data, {}, _decoded([], 4096)[1]) | tft_beam.AnalyzeDatasetWithCache(
            fn, pipeline=pipeline
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "graph"))
        _ = cache | tft_beam.analyzer_cache.WriteAnalysisCacheToFS(
            pipeline, str(out / "cache"), list(datasets)
        )


def _assert_same_graph(here: Path, beam: Path, records: list[bytes]) -> None:
    """Same vocabulary files, same transformed schema, same outputs on ``records``."""
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import schema_utils

    here_output, beam_output = tft.TFTransformOutput(str(here)), tft.TFTransformOutput(str(beam))
    assets = sorted(os.listdir(os.path.join(here_output.transform_savedmodel_dir, "assets")))
    assert assets == sorted(os.listdir(os.path.join(beam_output.transform_savedmodel_dir, "assets")))
    for name in assets:
        here_file = os.path.join(here_output.transform_savedmodel_dir, "assets", name)
        beam_file = os.path.join(beam_output.transform_savedmodel_dir, "assets", name)
        if name.endswith(".gz"):  # gzip headers differ; the records must not
            here_records = list(tf.data.TFRecordDataset(here_file, "GZIP").as_numpy_iterator())
            assert here_records == list(tf.data.TFRecordDataset(beam_file, "GZIP").as_numpy_iterator())
            assert gzip.open(here_file).read()  # a vocabulary, not an empty file
        else:
            assert filecmp.cmp(here_file, beam_file, shallow=False), name
    assert here_output.transformed_metadata.schema == beam_output.transformed_metadata.schema
    features = tf.io.parse_example(records, schema_utils.schema_as_feature_spec(_schema()).feature_spec)
    here_values = here_output.transform_raw_features(features)
    beam_values = beam_output.transform_raw_features(features)
    assert set(here_values) == set(beam_values)
    for name, value in here_values.items():
        if isinstance(value, tf.SparseTensor):
            value, beam_values[name] = tf.sparse.to_dense(value), tf.sparse.to_dense(beam_values[name])
        if value.dtype.is_floating:
            np.testing.assert_allclose(value.numpy(), beam_values[name].numpy(), rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(value.numpy(), beam_values[name].numpy())


def _manifest(cache_dir: Path) -> dict[str, set[bytes]]:
    from tensorflow_transform.beam.analyzer_cache import _ManifestFile

    return {key: set(_ManifestFile(str(cache_dir / key)).read()) for key in os.listdir(cache_dir)}


@pytest.fixture(scope="module")
def datasets():
    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    return {DatasetKey("span1"): _records(1, 500), DatasetKey("span2"): _records(2, 300)}


@pytest.mark.parametrize("fn", [one_phase_fn, two_phase_fn])
def test_analysis_in_process_equals_beams(fn, datasets, tmp_path):
    result = _analyze_here(fn, datasets, tmp_path / "here", batch_rows=128)
    _analyze_with_beam(fn, datasets, tmp_path / "beam")
    _assert_same_graph(tmp_path / "here" / "graph", tmp_path / "beam" / "graph", _records(3, 200))
    # the same cache entries, under the same keys (a multi-phase analysis caches its first phase)
    here_entries, beam_entries = (
        _manifest(tmp_path / "here" / "cache"),
        _manifest(tmp_path / "beam" / "cache"),
    )
    assert here_entries == beam_entries
    assert all(here_entries.values())
    encoded = sum(len(entries) for entries in here_entries.values())
    # TFT counts cache use only for single-phase analyses (its InstrumentDatasetCache)
    assert (result.cache_entries_decoded, result.cache_entries_encoded) == (
        (0, encoded) if fn is one_phase_fn else (0, 0)
    )


def test_analysis_in_process_reads_beams_cache_and_beam_reads_its(datasets, tmp_path):
    """A cache written one way serves the other: all of span1 from it, span2 (changed) read."""
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    first = {DatasetKey("span1"): datasets[DatasetKey("span1")]}
    _analyze_with_beam(one_of_each_coder_fn, first, tmp_path / "beam_first")
    here = _analyze_here(
        one_of_each_coder_fn, datasets, tmp_path / "here", str(tmp_path / "beam_first" / "cache")
    )
    _analyze_here(one_of_each_coder_fn, datasets, tmp_path / "reference")
    _assert_same_graph(tmp_path / "here" / "graph", tmp_path / "reference" / "graph", _records(3, 200))
    span1_entries = len(_manifest(tmp_path / "beam_first" / "cache")["span1"])
    assert (here.cache_entries_decoded, here.cache_entries_encoded) == (span1_entries, span1_entries)
    assert here.cache_read.keys() == {DatasetKey("span1")}

    # Beam, handed the in-process cache of both spans, reads no data at all
    cache_dir = str(tmp_path / "here" / "cache")
    out = tmp_path / "beam_second"
    with tft_beam.Context(temp_dir=str(out / "tmp")), _beam_pipeline() as pipeline:
        keys = list(datasets)
        cache = pipeline | tft_beam.analyzer_cache.ReadAnalysisCacheFromFS(cache_dir, keys)
        transform_fn, _ = ({key: None for key in keys}, cache, _decoded([], 4096)[1]) | (
            tft_beam.AnalyzeDatasetWithCache(one_of_each_coder_fn, pipeline=pipeline)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out / "graph"))
    _assert_same_graph(out / "graph", tmp_path / "reference" / "graph", _records(3, 200))


def test_cache_entry_without_its_file_is_recomputed(datasets, tmp_path, caplog):
    """A manifest listing an entry whose file is missing (a cache write that stopped early) must
    not read as an empty dataset: that entry is recomputed from the data."""
    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    first = _analyze_here(one_of_each_coder_fn, datasets, tmp_path / "first")
    span1 = tmp_path / "first" / "cache" / "span1"
    (missing,) = [p for p in span1.iterdir() if p.name.startswith("0-")]
    missing.unlink()
    with caplog.at_level("WARNING", logger="mlpipe.components.tft_analysis"):
        again = _analyze_here(
            one_of_each_coder_fn, datasets, tmp_path / "again", str(tmp_path / "first" / "cache")
        )
    assert f"analyzer cache {span1}: entry 0 is in the manifest but has no file" in caplog.text
    _assert_same_graph(tmp_path / "again" / "graph", tmp_path / "first" / "graph", _records(3, 200))
    entries = first.cache_entries_encoded
    assert again.cache_entries_decoded == entries - 1  # all but the lost entry came from the cache
    # span1 had to be read again for its lost entry; the updated cache is whole again
    assert DatasetKey("span1") in again.cache_computed
    assert _manifest(tmp_path / "again" / "cache") == _manifest(tmp_path / "first" / "cache")
    assert all(any(p.name.startswith(f"{i}-") for p in (tmp_path / "again" / "cache" / "span1").iterdir())
               for i in range(len(_manifest(tmp_path / "again" / "cache")["span1"])))  # fmt: skip


def test_failing_analysis_graph_names_the_dataset_and_records(tmp_path):
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    from mlpipe.components import tft_analysis
    from mlpipe.errors import DataError

    def checked_fn(inputs):
        import tensorflow as tf
        import tensorflow_transform as tft

        with tf.control_dependencies([tf.debugging.assert_less(inputs["n"], tf.constant(95, tf.int64))]):
            n = tf.identity(inputs["n"])
        return {"n_z": tft.scale_to_z_score(tf.cast(n, tf.float32))}

    records = _records(1, 100)
    first_bad = next(i for i, r in enumerate(records) if _int_feature(r, "n") >= 95)
    batches, config = _decoded(records, 10)
    key = DatasetKey("span1")
    with tft_beam.Context(temp_dir=str(tmp_path)):
        analysis = tft_analysis.InProcessAnalysis(checked_fn, config, [key], None)
        with pytest.raises(DataError) as error:
            analysis.run(
                {key: tft_analysis.AnalysisInput("/data/Split-span1", batches)}, str(tmp_path / "graph")
            )
    start = first_bad // 10 * 10
    assert str(error.value).startswith(
        f"/data/Split-span1: preprocessing_fn's analysis (phase 0) failed on records {start}..{start + 9}: "
    )


def _int_feature(record: bytes, name: str) -> int:
    import tensorflow as tf

    return tf.train.Example.FromString(record).features.feature[name].int64_list.value[0]


def test_operations_without_in_process_implementation_are_named_before_running(tmp_path):
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.beam.analyzer_cache import DatasetKey

    from mlpipe.components import tft_analysis

    def by_label(inputs):
        labels = tf.cast(inputs["n"] >= 50, tf.int64)
        return {"id": tft.compute_and_apply_vocabulary(inputs["cat"], labels=labels)}

    def with_coverage(inputs):
        cat = inputs["cat"]
        return {
            "id": tft.compute_and_apply_vocabulary(cat, top_k=2, coverage_top_k=1, key_fn=lambda t: t[:1])
        }

    def gaussian(inputs):  # Tukey's L-moments: estimated per batch, Beam's batches are timed
        return {"x_g": tft.scale_to_gaussian(inputs["x"])}

    def approximate(inputs):  # a Misra-Gries sketch: depends on the order batches reach it
        return {"id": tft.experimental.compute_and_apply_approximate_vocabulary(inputs["cat"], top_k=3)}

    class NewCombiner(tft.analyzers.NumPyCombiner):
        """An analyzer TFT might add: not in the claimed list (even as a subclass of one), so Beam."""

    def new_analyzer(inputs):
        combiner = NewCombiner(np.sum, 0.0, [np.float32], [()])
        (total,) = tft.analyzers._apply_cacheable_combiner(combiner, tf.reduce_sum(inputs["x"]))
        return {"x_share": inputs["x"] / total}

    def one_phase(inputs):
        return {"x_z": tft.scale_to_z_score(inputs["x"])}

    config = _decoded([], 10)[1]
    with tft_beam.Context(temp_dir=str(tmp_path)):
        found = {
            fn.__name__: tft_analysis.InProcessAnalysis(fn, config, [DatasetKey("s")], None).unsupported
            for fn in (by_label, with_coverage, gaussian, approximate, new_analyzer, one_phase)
        }
    assert found == {
        "by_label": "VocabularyAccumulate ordered by MUTUAL_INFORMATION, VocabularyMerge ordered by MUTUAL_INFORMATION",
        "with_coverage": "VocabularyPrune with coverage (key_fn)",
        "gaussian": "CacheableCombineAccumulate of _LMomentsCombiner, CacheableCombineMerge of _LMomentsCombiner",
        "approximate": "CacheableCombineAccumulate of _VocabularyCombiner, CacheableCombineMerge of _VocabularyCombiner",
        "new_analyzer": "CacheableCombineAccumulate of NewCombiner, CacheableCombineMerge of NewCombiner",
        "one_phase": None,
    }


# --- the demo's taxi module through Transform, both ways -------------------------------------------

TAXI_ROWS = 3000


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory):
    """ExampleGen, StatisticsGen and SchemaGen on 3,000 trips of the taxi sample, then Transform
    with the taxi module twice: analyzed in this process (the default for data this small) and by
    Beam."""
    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen
    from mlpipe.components.schema_gen import SchemaGen
    from mlpipe.components.statistics_gen import StatisticsGen
    from mlpipe.components.transform import Transform

    work = tmp_path_factory.mktemp("taxi_analysis")
    (work / "data").mkdir()
    with open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as f:
        header, *rows = csv.reader(f)
    with open(work / "data" / "data.csv", "w", newline="") as f:
        # the sample's only pickup_census_tract is in its last row; the module needs the feature
        csv.writer(f).writerows([header, *rows[: TAXI_ROWS - 1], rows[-1]])
    gen = CsvExampleGen(input_base=str(work / "data"))
    stats = StatisticsGen(examples=gen.outputs["examples"])
    schema = SchemaGen(statistics=stats.outputs["statistics"])
    here, beam = (
        Transform(
            examples=gen.outputs["examples"],
            schema=schema.outputs["schema"],
            module_file=str(TAXI_MODULE),
            **args,
        ).with_id(node_id)
        for node_id, args in (("Transform", {}), ("BeamTransform", {"beam_threshold_rows": 0}))
    )
    pipeline = Pipeline("taxi_analysis", work / "root", [gen, stats, schema, here, beam])
    result = LocalDagRunner(max_workers=1, progress=False).run(pipeline)
    return result.results["Transform"], result.results["BeamTransform"]


def _transformed(node, split: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    examples = node.outputs["transformed_examples"][0]
    files = tf.io.gfile.glob(os.path.join(examples.split_uri(split), "*.gz"))
    columns: dict[str, list] = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        for key, feature in tf.train.Example.FromString(record).features.feature.items():
            columns.setdefault(key, []).extend(feature.float_list.value or feature.int64_list.value)
    return {key: np.array(values) for key, values in columns.items()}


@pytest.mark.e2e
def test_taxi_module_analyzed_in_process_equals_beams_analysis(taxi_run):
    import tensorflow_transform as tft

    here, beam = taxi_run
    assert "analyzing ['train'] in this process, transforming ['train', 'eval'] in this process" in (
        Path(here.log_path).read_text()
    )
    assert "analyzing ['train'] with Beam, transforming ['train', 'eval'] with Beam" in (
        Path(beam.log_path).read_text()
    )
    here_output = tft.TFTransformOutput(here.outputs["transform_graph"][0].uri)
    beam_output = tft.TFTransformOutput(beam.outputs["transform_graph"][0].uri)
    here_assets = Path(here_output.transform_savedmodel_dir) / "assets"
    beam_assets = Path(beam_output.transform_savedmodel_dir) / "assets"
    vocabularies = sorted(path.name for path in here_assets.iterdir())
    assert vocabularies == sorted(path.name for path in beam_assets.iterdir())
    assert len(vocabularies) == 6  # the module's six vocabulary features
    for name in vocabularies:
        assert filecmp.cmp(here_assets / name, beam_assets / name, shallow=False), name
    assert here_output.vocabulary_size_by_name("company") > 20
    assert here_output.transformed_metadata.schema == beam_output.transformed_metadata.schema
    for split in ("train", "eval"):
        got, want = _transformed(here, split), _transformed(beam, split)
        assert set(got) == set(want) and len(got["fare"]) == len(want["fare"]) > 500
        for name, values in got.items():
            if values.dtype.kind == "f":
                np.testing.assert_allclose(values, want[name], rtol=1e-5, atol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(values, want[name], err_msg=name)
    # the same accumulators went into each cache, under the same entry keys
    here_cache = Path(here.outputs["updated_analyzer_cache"][0].uri)
    beam_cache = Path(beam.outputs["updated_analyzer_cache"][0].uri)
    assert _manifest(here_cache) == _manifest(beam_cache)
    assert len(next(iter(_manifest(here_cache).values()))) == 13  # 7 packed combiners, 6 vocabularies
