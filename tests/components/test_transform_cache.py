"""Transform's analyzer cache, across runs of a real pipeline on LocalDagRunner.

The data is a few hundred generated rows per span in CSV; CsvExampleGen gives every span its own
split (the unit of reuse), beside a fixed ``eval`` split, and ImportSchemaGen a written schema. The
cache of the previous run comes from ``Resolver(strategy="latest_artifact")``, or, to hand over one
given run's cache, from that (cached) node's ``updated_analyzer_cache``. These splits are small, so
Transform analyzes and transforms them in this process unless a run says otherwise. Runs, in order:

1. span 1, cache wired (none found yet): writes the first cache;
2. spans 1+2, cache wired: another Examples artifact, whose span-1 split has the same records;
3. spans 1+2 without a cache, under another node id: the reference for 2;
4. run 2 again: Transform stays cached although the resolver now hands it run 3's cache;
5. spans 1+2, another preprocessing_fn, cache wired (resolves run 3's cache);
6. spans 1+2, that other preprocessing_fn, without a cache: the reference for 5;
7. spans 1+2 without a cache, analyzed and transformed by Beam (``beam_threshold_rows=0``): the
   reference (run 3) did both in this process, and both ways must write the same examples;
8. spans 1+2 without a cache, traced in ``tf.compat.v1`` (``force_tf_compat_v1``): a TF1 graph
   that must transform as the reference's TF2 graph does (analyzed by Beam);
9. spans 1+2 without a cache, a preprocessing_fn with an analyzer the in-process analysis lacks
   (a vocabulary ordered by mutual information): analyzed by Beam, transformed here;
10. spans 1+2, handed run 7's cache (written by Beam), analyzed in this process;
11. spans 1+2, handed run 3's cache (written in this process), analyzed by Beam.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpipe import Pipeline, Resolver
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.schema_gen import ImportSchemaGen
from mlpipe.components.transform import Transform
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.types import TransformCache

ROWS_PER_SPAN = 300

# Three analyzers (vocabulary, mean and variance, quantiles), one analysis phase.
MAIN_MODULE = """
import tensorflow_transform as tft

def preprocessing_fn(inputs):
    return {
        "x_z": tft.scale_to_z_score(inputs["x"]),
        "cat_id": tft.compute_and_apply_vocabulary(inputs["cat"], vocab_filename="cat"),
        "n_bucket": tft.bucketize(inputs["n"], num_buckets=4),
    }
"""

# The same vocabulary and buckets; the z-score analyzer (same name) now sees log1p(x). Reusing
# MAIN's mean and variance of x for it would give values far from the cacheless run's.
OTHER_MODULE = """
import tensorflow as tf
import tensorflow_transform as tft

def preprocessing_fn(inputs):
    return {
        "x_z": tft.scale_to_z_score(tf.math.log1p(inputs["x"])),
        "cat_id": tft.compute_and_apply_vocabulary(inputs["cat"], vocab_filename="cat"),
        "n_bucket": tft.bucketize(inputs["n"], num_buckets=4),
    }
"""

# MAIN's analyzers, plus a vocabulary of cat ordered by its mutual information with n >= 50.
UNSUPPORTED_MODULE = MAIN_MODULE.replace(
    "import tensorflow_transform as tft", "import tensorflow as tf\nimport tensorflow_transform as tft"
).replace(
    "    }",
    """        "cat_by_label": tft.compute_and_apply_vocabulary(
            inputs["cat"], labels=tf.cast(inputs["n"] >= 50, tf.int64), vocab_filename="cat_by_label"
        ),
    }""",
)

SCHEMA = """
feature { name: "x" type: FLOAT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "cat" type: BYTES presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "n" type: INT presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
"""


def _write_csv(path: Path, seed: int, rows: int, categories: list[str], scale: float) -> None:
    """Rows of x (float), cat (skewed categories) and n (int); every value present."""
    rng = np.random.default_rng(seed)
    weights = np.arange(len(categories), 0, -1, dtype=float)
    cats = rng.choice(categories, size=rows, p=weights / weights.sum())
    xs = rng.gamma(2.0, scale, size=rows)
    ns = rng.integers(0, 100, size=rows)
    path.parent.mkdir(parents=True)
    lines = ["x,cat,n"] + [f"{x:.3f},{c},{n}" for x, c, n in zip(xs, cats, ns, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _pipeline(
    work: Path, spans: list[int], module: str, cached: bool, node_id: str, cache_from: tuple | None = None,
    **transform_args: int,
) -> Pipeline:  # fmt: skip
    """ExampleGen, schema and a Transform ``node_id``; ``cached`` wires the latest analyzer cache,
    ``cache_from=(node id, module, args)`` the cache of that Transform (rerun, so cached)."""
    span_splits = [f"span{s}" for s in spans]
    gen = CsvExampleGen(
        input_base=str(work / "data"),
        input_config={
            "splits": [{"name": f"span{s}", "pattern": f"span-{s}/*.csv"} for s in spans]
            + [{"name": "eval", "pattern": "eval/*.csv"}]
        },
    )
    schema = ImportSchemaGen(schema_file=str(work / "schema.pbtxt"))
    nodes = [gen, schema]
    cache_input = {}
    if cached:
        resolver = Resolver(strategy="latest_artifact", analyzer_cache=TransformCache).with_id(
            "LatestAnalyzerCache"
        )
        nodes.append(resolver)
        cache_input["analyzer_cache"] = resolver.outputs["analyzer_cache"]

    def transform_node(node_id: str, module: str, **args: Any) -> Transform:
        return Transform(
            examples=gen.outputs["examples"],
            schema=schema.outputs["schema"],
            module_file=str(work / module),
            splits_config={"analyze": span_splits, "transform": [*span_splits, "eval"]},
            **args,
        ).with_id(node_id)

    if cache_from is not None:
        source_id, source_module, source_args = cache_from
        source = transform_node(source_id, source_module, **source_args)
        nodes.append(source)
        cache_input["analyzer_cache"] = source.outputs["updated_analyzer_cache"]
    transform = transform_node(node_id, module, **cache_input, **transform_args)
    return Pipeline(
        "transform_cache", work / "root", [*nodes, transform], metadata=sqlite(work / "metadata.sqlite")
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs of the module docstring: name -> (Transform's NodeResult, the run's RunResult)."""
    work = tmp_path_factory.mktemp("transform_cache")
    _write_csv(work / "data" / "span-1" / "data.csv", 1, ROWS_PER_SPAN, ["a", "b", "c", "d"], 1.0)
    # span 2 brings a new category and larger x, so analyzing it changes every analyzer's result
    _write_csv(work / "data" / "span-2" / "data.csv", 2, ROWS_PER_SPAN, ["b", "e", "a", "f"], 3.0)
    _write_csv(work / "data" / "eval" / "data.csv", 3, 100, ["a", "b", "c", "d", "e", "f"], 2.0)
    (work / "schema.pbtxt").write_text(SCHEMA)
    (work / "main_module.py").write_text(MAIN_MODULE)
    (work / "other_module.py").write_text(OTHER_MODULE)
    (work / "unsupported_module.py").write_text(UNSUPPORTED_MODULE)
    beam = {"beam_threshold_rows": 0}
    plan = {
        "first": ([1], "main_module.py", True, "Transform"),
        "grown": ([1, 2], "main_module.py", True, "Transform"),
        "reference": ([1, 2], "main_module.py", False, "ReferenceTransform"),
        "rerun": ([1, 2], "main_module.py", True, "Transform"),
        "other": ([1, 2], "other_module.py", True, "OtherTransform"),
        "other_reference": ([1, 2], "other_module.py", False, "OtherReference"),
        "with_beam": ([1, 2], "main_module.py", False, "BeamTransform", beam),
        "compat_v1": ([1, 2], "main_module.py", False, "V1Transform", {"force_tf_compat_v1": True}),
        "unsupported": ([1, 2], "unsupported_module.py", False, "UnsupportedTransform"),
        "reads_beam_cache": (
            [1, 2], "main_module.py", False, "ReadsBeamCache",
            {"cache_from": ("BeamTransform", "main_module.py", beam)},
        ),
        "beam_reads_cache": (
            [1, 2], "main_module.py", False, "BeamReadsCache",
            {"cache_from": ("ReferenceTransform", "main_module.py", {}), **beam},
        ),
    }  # fmt: skip
    found = {}
    for name, (spans, module, cached, node_id, *args) in plan.items():
        pipeline = _pipeline(work, spans, module, cached, node_id, **(args[0] if args else {}))
        result = LocalDagRunner(progress=False).run(pipeline)
        found[name] = (result.results[node_id], result)
    return found


def _cache(runs, name: str):
    return runs[name][0].outputs["updated_analyzer_cache"][0]


def _took(runs, name: str) -> dict:
    """What a run's analysis took from the cache, as recorded on its updated cache."""
    props = _cache(runs, name).custom_properties
    return {
        "analyzed": json.loads(props["analyzed_splits"]),
        "cached": json.loads(props["cached_splits"]),
        "decoded": props["cache_entries_decoded"],
        "encoded": props["cache_entries_encoded"],
    }


def _graph(runs, name: str):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(runs[name][0].outputs["transform_graph"][0].uri)


def _transformed_rows(runs, name: str, split: str) -> dict[str, np.ndarray]:
    """Each transformed feature of one split, in row order."""
    import tensorflow as tf

    examples = runs[name][0].outputs["transformed_examples"][0]
    files = tf.io.gfile.glob(os.path.join(examples.split_uri(split), "*.gz"))
    columns: dict[str, list[float]] = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        for key, feature in tf.train.Example.FromString(record.numpy()).features.feature.items():
            values = feature.float_list.value or feature.int64_list.value
            columns.setdefault(key, []).extend(values)
    return {key: np.array(values) for key, values in columns.items()}


def _log(runs, name: str) -> str:
    return Path(runs[name][0].log_path).read_text()


def _assert_same_transform(runs, name: str, reference: str, extra_features: frozenset = frozenset()) -> None:
    assert _graph(runs, name).vocabulary_by_name("cat") == _graph(runs, reference).vocabulary_by_name("cat")
    for split in ("span1", "span2", "eval"):
        got, want = _transformed_rows(runs, name, split), _transformed_rows(runs, reference, split)
        assert set(got) - extra_features == set(want) == {"x_z", "cat_id", "n_bucket"}
        assert len(got["x_z"]) == (100 if split == "eval" else ROWS_PER_SPAN)
        np.testing.assert_allclose(got["x_z"], want["x_z"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["cat_id"], want["cat_id"])
        np.testing.assert_array_equal(got["n_bucket"], want["n_bucket"])


@pytest.mark.e2e
def test_grown_data_analyzes_only_the_new_span_and_matches_a_cacheless_run(runs):
    first, grown, reference = _took(runs, "first"), _took(runs, "grown"), _took(runs, "reference")
    # the first run found no cache: it read its split and encoded its accumulators
    assert (first["analyzed"], first["cached"], first["decoded"]) == (["span1"], [], 0)
    assert first["encoded"] >= 3  # one per analyzer at least
    # with span 2 added, span 1 came wholly from the first run's cache and was not read
    assert (grown["analyzed"], grown["cached"]) == (["span2"], ["span1"])
    assert grown["decoded"] == first["encoded"]
    assert grown["encoded"] == first["encoded"]  # span 2's, the same analyzers
    # the cacheless reference read both spans
    assert (reference["analyzed"], reference["cached"], reference["decoded"]) == (["span1", "span2"], [], 0)
    assert reference["encoded"] == 2 * first["encoded"]
    # ... and computed the same transform graph and transformed examples
    _assert_same_transform(runs, "grown", "reference")
    # which do include span 2: its new category is in the vocabulary
    assert b"f" in _graph(runs, "grown").vocabulary_by_name("cat")
    assert b"f" not in _graph(runs, "first").vocabulary_by_name("cat")


@pytest.mark.e2e
def test_cache_is_keyed_by_the_split_content_not_the_examples_artifact(runs):
    first_examples = runs["first"][1].results["CsvExampleGen"].outputs["examples"][0]
    grown_examples = runs["grown"][1].results["CsvExampleGen"].outputs["examples"][0]
    assert first_examples.id != grown_examples.id  # another ExampleGen run, same span-1 records
    first_keys = sorted(os.listdir(_cache(runs, "first").uri))
    grown_keys = sorted(os.listdir(_cache(runs, "grown").uri))
    assert [k.split("-")[0] for k in grown_keys] == ["span1", "span2"]
    assert first_keys == grown_keys[:1]
    # the updated cache carries span 1's accumulators on: the next run can reuse both spans
    assert sorted(os.listdir(_cache(runs, "reference").uri)) == grown_keys


@pytest.mark.e2e
def test_a_new_cache_input_alone_does_not_rerun_transform(runs):
    rerun = runs["rerun"][1]
    assert (
        rerun.results["LatestAnalyzerCache"].outputs["analyzer_cache"][0].id == _cache(runs, "reference").id
    )
    assert rerun.results["Transform"].state == "CACHED"
    assert rerun.results["Transform"].outputs["transform_graph"][0].id == (
        runs["grown"][0].outputs["transform_graph"][0].id
    )


@pytest.mark.e2e
def test_cache_of_another_preprocessing_fn_reuses_only_unchanged_analyzers(runs):
    resolved = runs["other"][1].results["LatestAnalyzerCache"].outputs["analyzer_cache"][0]
    assert resolved.id == _cache(runs, "reference").id  # MAIN_MODULE's accumulators of spans 1+2
    other, reference = _took(runs, "other"), _took(runs, "other_reference")
    # the changed z-score analyzer has no valid entry, so both spans were read ...
    assert (other["analyzed"], other["cached"]) == (["span1", "span2"], [])
    # ... while the unchanged vocabulary and quantiles came from the cache, for both spans
    assert 0 < other["decoded"] < _took(runs, "reference")["encoded"]
    assert other["decoded"] + other["encoded"] == reference["encoded"]
    _assert_same_transform(runs, "other", "other_reference")
    # MAIN's mean/variance would have been wrong here: the two functions' z-scores differ
    main_z = _transformed_rows(runs, "reference", "eval")["x_z"]
    other_z = _transformed_rows(runs, "other", "eval")["x_z"]
    assert not np.allclose(main_z, other_z, atol=0.05)


@pytest.mark.e2e
def test_small_splits_analyzed_and_transformed_in_process_equal_beams_output(runs):
    assert (
        "analyzing ['span1', 'span2'] in this process, transforming ['span1', 'span2', 'eval'] in this process"
        in _log(runs, "reference")
    )
    assert (
        "analyzing ['span1', 'span2'] with Beam, transforming ['span1', 'span2', 'eval'] with Beam"
        in _log(runs, "with_beam")
    )
    _assert_same_transform(runs, "reference", "with_beam")
    # the transform graphs agree on what they say of their outputs, deferred values included
    schema = _graph(runs, "reference").transformed_metadata.schema
    assert schema == _graph(runs, "with_beam").transformed_metadata.schema
    assert {f.name: f.int_domain.max for f in schema.feature if f.HasField("int_domain")} == {
        "cat_id": 5,  # six categories
        "n_bucket": 3,  # four buckets
    }
    assert _took(runs, "reference")["encoded"] == _took(runs, "with_beam")["encoded"]
    for name in ("reference", "with_beam"):
        examples = runs[name][0].outputs["transformed_examples"][0]
        assert os.listdir(examples.split_uri("eval")) == ["transformed_examples-00000-of-00001.gz"]
        assert examples.get_custom_property("num_rows_span2") == ROWS_PER_SPAN


@pytest.mark.e2e
def test_tf_compat_v1_graph_transforms_as_the_tf2_graph(runs):
    import tensorflow as tf
    from tensorflow_transform.saved import saved_transform_io_v2

    v1, v2 = _graph(runs, "compat_v1"), _graph(runs, "reference")
    assert saved_transform_io_v2.SavedModelLoader(v1.transform_savedmodel_dir).load_v2_in_compat
    assert not saved_transform_io_v2.SavedModelLoader(v2.transform_savedmodel_dir).load_v2_in_compat
    _assert_same_transform(runs, "compat_v1", "reference")
    # the Trainer's path: TFT's Keras layer applies the TF1 graph to parsed raw examples
    raw = runs["compat_v1"][1].results["CsvExampleGen"].outputs["examples"][0]
    files = tf.io.gfile.glob(os.path.join(raw.split_uri("eval"), "*.gz"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    features = tf.io.parse_example(records, v1.raw_feature_spec())
    transformed = v1.transform_features_layer()(features)
    want = _transformed_rows(runs, "reference", "eval")
    np.testing.assert_allclose(transformed["x_z"].numpy().reshape(-1), want["x_z"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(transformed["cat_id"].numpy().reshape(-1), want["cat_id"])


@pytest.mark.e2e
def test_analyzer_without_in_process_implementation_falls_back_to_beam(runs):
    log = _log(runs, "unsupported")
    assert (
        "analyzing ['span1', 'span2'] with Beam (no in-process implementation of TFT's "
        "VocabularyAccumulate ordered by MUTUAL_INFORMATION, VocabularyMerge ordered by MUTUAL_INFORMATION), "
        "transforming ['span1', 'span2', 'eval'] in this process"
    ) in log
    # MAIN's analyzers as the in-process reference computed them, plus the new vocabulary
    _assert_same_transform(runs, "unsupported", "reference", extra_features=frozenset({"cat_by_label"}))
    graph = _graph(runs, "unsupported")
    assert sorted(graph.vocabulary_by_name("cat_by_label")) == [b"a", b"b", b"c", b"d", b"e", b"f"]
    ids = _transformed_rows(runs, "unsupported", "eval")["cat_by_label"]
    assert len(ids) == 100 and set(ids) <= set(range(6))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "source", "source_name", "where"),
    [
        ("reads_beam_cache", "BeamTransform", "with_beam", "in this process"),
        ("beam_reads_cache", "ReferenceTransform", "reference", "with Beam"),
    ],
)
def test_cache_written_one_way_is_read_the_other(runs, name, source, source_name, where):
    """Beam's and the in-process analysis share TFT's cache format and entry keys."""
    handed = runs[name][1].results[source]
    assert handed.state == "CACHED"
    assert handed.outputs["updated_analyzer_cache"][0].id == _cache(runs, source_name).id
    assert f"analyzing ['span1', 'span2'] {where}" in _log(runs, name)
    took = _took(runs, name)
    # every accumulator came from the other way's cache: no split was read for analysis
    assert (took["analyzed"], took["cached"]) == ([], ["span1", "span2"])
    assert (took["decoded"], took["encoded"]) == (_took(runs, source_name)["encoded"], 0)
    _assert_same_transform(runs, name, "reference")
    # the updated cache carries the same entries on
    assert sorted(os.listdir(_cache(runs, name).uri)) == sorted(os.listdir(_cache(runs, source_name).uri))


# Phase 1 reads phase 0's mean: x is centred before its z-score is analyzed.
TWO_PHASE_MODULE = """
import tensorflow_transform as tft

def preprocessing_fn(inputs):
    centred = inputs["x"] - tft.mean(inputs["x"])
    return {
        "x_z": tft.scale_to_z_score(centred),
        "x_centred_bucket": tft.bucketize(centred, num_buckets=4),
        "cat_id": tft.compute_and_apply_vocabulary(inputs["cat"], vocab_filename="cat"),
    }
"""


@pytest.mark.e2e
def test_two_phase_analysis_on_beam_and_here_at_once(tmp_path):
    """Two Transforms of a two-phase ``preprocessing_fn`` in one run, side by side (two node
    threads of one process): one analyzes in this process, one in Beam, and they agree."""
    _write_csv(tmp_path / "data" / "span-1" / "data.csv", 1, ROWS_PER_SPAN, ["a", "b", "c"], 1.0)
    _write_csv(tmp_path / "data" / "eval" / "data.csv", 3, 100, ["a", "b", "c"], 2.0)
    (tmp_path / "schema.pbtxt").write_text(SCHEMA)
    (tmp_path / "two_phase.py").write_text(TWO_PHASE_MODULE)
    gen = CsvExampleGen(
        input_base=str(tmp_path / "data"),
        input_config={
            "splits": [
                {"name": "span1", "pattern": "span-1/*.csv"},
                {"name": "eval", "pattern": "eval/*.csv"},
            ]
        },
    )
    schema = ImportSchemaGen(schema_file=str(tmp_path / "schema.pbtxt"))
    transforms = {
        node_id: Transform(
            examples=gen.outputs["examples"],
            schema=schema.outputs["schema"],
            module_file=str(tmp_path / "two_phase.py"),
            splits_config={"analyze": ["span1"], "transform": ["span1", "eval"]},
            beam_threshold_rows=threshold,
        ).with_id(node_id)
        for node_id, threshold in (("Here", 1_000_000), ("InBeam", 0))
    }
    pipeline = Pipeline(
        "two_phase", tmp_path / "root", [gen, schema, *transforms.values()],
        metadata=sqlite(tmp_path / "metadata.sqlite"),
    )  # fmt: skip
    result = LocalDagRunner(max_workers=2, progress=False).run(pipeline)

    here, beam = result.results["Here"], result.results["InBeam"]
    assert "analyzing ['span1'] in this process" in Path(here.log_path).read_text()
    assert "analyzing ['span1'] with Beam" in Path(beam.log_path).read_text()
    runs = {"here": (here, result), "beam": (beam, result)}
    for split, rows in (("span1", ROWS_PER_SPAN), ("eval", 100)):
        got, want = _transformed_rows(runs, "here", split), _transformed_rows(runs, "beam", split)
        assert set(got) == set(want) == {"x_z", "x_centred_bucket", "cat_id"}
        assert len(got["x_z"]) == rows
        np.testing.assert_allclose(got["x_z"], want["x_z"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["x_centred_bucket"], want["x_centred_bucket"])
        np.testing.assert_array_equal(got["cat_id"], want["cat_id"])
    # phase 1 saw centred values: span 1's own z-scores have mean 0 and the buckets are balanced
    span1 = _transformed_rows(runs, "here", "span1")
    assert abs(span1["x_z"].mean()) < 1e-5
    assert sorted(np.bincount(span1["x_centred_bucket"].astype(int))) == [75, 75, 75, 75]


# A user module written for TF1 that switches TF2 behaviour (and eager execution) off on import.
TF1_SCRIPT = """
import json, sys
from pathlib import Path
from mlpipe import Pipeline
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.components.schema_gen import ImportSchemaGen
from mlpipe.components.transform import Transform
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner

work = Path(sys.argv[1])
gen = CsvExampleGen(input_base=str(work / "data"))
schema = ImportSchemaGen(schema_file=str(work / "schema.pbtxt"))
transform = Transform(
    examples=gen.outputs["examples"], schema=schema.outputs["schema"], module_file=str(work / "tf1.py")
)
pipeline = Pipeline("tf1", work / "root", [gen, schema, transform], metadata=sqlite(work / "m.sqlite"))
result = LocalDagRunner(progress=False).run(pipeline).results["Transform"]
print(json.dumps({"state": result.state, "log": Path(result.log_path).read_text(),
                  "examples": result.outputs["transformed_examples"][0].uri}))
"""


@pytest.mark.e2e
def test_module_that_disables_tf2_behaviour_is_analyzed_and_transformed_in_beam(tmp_path):
    """Both in-process steps need eager execution; a process without it runs them in Beam (in a
    subprocess here: TF2 behaviour cannot be switched back on)."""
    import subprocess
    import sys

    _write_csv(tmp_path / "data" / "data.csv", 1, ROWS_PER_SPAN, ["a", "b", "c"], 1.0)
    (tmp_path / "schema.pbtxt").write_text(SCHEMA)
    (tmp_path / "tf1.py").write_text(
        "import tensorflow as tf\ntf.compat.v1.disable_v2_behavior()\n" + MAIN_MODULE
    )
    done = subprocess.run(
        [sys.executable, "-c", TF1_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "COMPLETE"
    assert (
        "analyzing ['train'] with Beam (eager execution is disabled in this process), "
        "transforming ['train', 'eval'] with Beam"
    ) in report["log"]
    import tensorflow as tf

    files = tf.io.gfile.glob(os.path.join(report["examples"], "Split-train", "*.gz"))
    rows = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files, "GZIP")]
    z = np.array([row.features.feature["x_z"].float_list.value[0] for row in rows])
    assert len(z) > 150 and abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05  # train was analyzed
