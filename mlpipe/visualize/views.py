"""What each artifact type shows: readers from an artifact's files to a ``Document``.

Readers need only the light protobuf modules (tensorflow_metadata, tfx_bsl), never TensorFlow, so
``mlpipe show`` answers in about a second. A missing or unreadable file becomes a line in the
document rather than an error: a viewer should show what is there, including that something is not.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

from mlpipe.types.artifact import Artifact
from mlpipe.visualize.document import Bars, Document, Preformatted, Section, Table

STATS_FILE = "FeatureStats.pb"
SCHEMA_FILE = "schema.pbtxt"
ANOMALIES_FILE = "SchemaDiff.pb"
SUMMARY_FILE = "summary.txt"
EXAMPLE_ROWS = 5  # rows of Examples shown per split
TOP_VALUES = 5  # string values listed per feature
MAX_FILES = 50  # files listed for types without a reader


def artifact_document(artifact: Artifact) -> Document:
    """The document for any artifact: its reader's sections, or a file listing for unknown types."""
    reader = _READERS.get(artifact.type_name, _files)
    sections = reader(artifact) if os.path.isdir(artifact.uri) else (_missing(artifact.uri),)
    props = {**artifact.properties, **artifact.custom_properties}
    title = artifact.type_name if artifact.id is None else f"{artifact.type_name} {artifact.id}"
    return Document(title, artifact.uri, {k: str(v) for k, v in sorted(props.items())}, sections)


def _splits(artifact: Artifact) -> list[str]:
    """Recorded split names, else the ``Split-*`` directories on disk (artifacts made by hand)."""
    if artifact.split_names:
        return artifact.split_names
    return sorted(d[len("Split-") :] for d in os.listdir(artifact.uri) if d.startswith("Split-"))


def _split_protos(
    artifact: Artifact, filename: str, proto_class: Any, sections: list[Section]
) -> Iterator[tuple[str, Any]]:
    """(split, parsed ``Split-<split>/<filename>``) per split; a missing file adds a note to ``sections``."""
    for split in _splits(artifact):
        path = os.path.join(artifact.split_uri(split), filename)
        if not os.path.isfile(path):
            sections.append(_missing(path))
            continue
        with open(path, "rb") as f:
            yield split, proto_class.FromString(f.read())


def _missing(path: str) -> Preformatted:
    return Preformatted(os.path.basename(path), f"not found: {path}")


def _num(value: float) -> str:
    return f"{value:.6g}"


# --- ExampleStatistics ---------------------------------------------------------------------------
def _statistics(artifact: Artifact) -> tuple[Section, ...]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    sections: list[Section] = []
    for split, stats in _split_protos(
        artifact, STATS_FILE, statistics_pb2.DatasetFeatureStatisticsList, sections
    ):
        for dataset in stats.datasets:
            sections.extend(_dataset_tables(split, dataset))
    return tuple(sections)


def _dataset_tables(split: str, dataset: Any) -> list[Table]:
    """Numeric and categorical features apart, as TFDV's own view does: their columns differ."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    numeric, categorical = [], []
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        s: Any = getattr(feature, kind) if kind else None  # the stats message WhichOneof names
        row = (
            ".".join(feature.path.step) or feature.name,
            statistics_pb2.FeatureNameStatistics.Type.Name(feature.type),
            *(_presence(s.common_stats, dataset.num_examples) if s is not None else ("-", "-")),
        )
        if kind == "num_stats":
            numeric.append(
                row + (_num(s.mean), _num(s.std_dev), _num(s.min), _num(s.median), _num(s.max), _histogram(s))
            )
        elif kind == "string_stats":
            top = ", ".join(f"{v.value} ({v.frequency:.0f})" for v in s.top_values[:TOP_VALUES])
            categorical.append(row + (str(s.unique), top))
        else:
            categorical.append(row + ("-", ""))
    prefix = f"split {split} ({dataset.num_examples} examples)"
    tables = []
    if numeric:
        numeric_header = (
            "feature",
            "type",
            "count",
            "missing",
            "mean",
            "std",
            "min",
            "median",
            "max",
            "histogram",
        )
        tables.append(Table(f"{prefix}: numeric features", numeric_header, tuple(numeric)))
    if categorical or not numeric:
        header = ("feature", "type", "count", "missing", "unique", "top values")
        tables.append(Table(f"{prefix}: categorical features", header, tuple(categorical)))
    return tables


def _presence(common: Any, num_examples: int) -> tuple[str, str]:
    missing = f"{100 * common.num_missing / num_examples:.1f}%" if num_examples else "-"
    return str(common.num_non_missing), missing


def _histogram(num_stats: Any) -> Bars:
    """The equal-width histogram (TFDV also stores a quantiles one, which is flat by construction)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for histogram in num_stats.histograms:
        if histogram.type == statistics_pb2.Histogram.STANDARD:
            return Bars(
                tuple(
                    (f"{_num(b.low_value)}–{_num(b.high_value)}", b.sample_count) for b in histogram.buckets
                )
            )
    return Bars(())


# --- Schema --------------------------------------------------------------------------------------
def _schema(artifact: Artifact) -> tuple[Section, ...]:
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = os.path.join(artifact.uri, SCHEMA_FILE)
    if not os.path.isfile(path):
        return (_missing(path),)
    with open(path, encoding="utf-8") as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    domains = {d.name: d for d in schema.string_domain}
    rows = tuple(
        (
            f.name,
            schema_pb2.FeatureType.Name(f.type),
            "required" if f.presence.min_fraction >= 1.0 else "optional",
            _shape(f),
            _domain(f, domains),
        )
        for f in schema.feature
    )
    return (Table("features", ("feature", "type", "presence", "shape", "domain"), rows),)


def _shape(feature: Any) -> str:
    if feature.HasField("shape"):
        return "[" + ", ".join(str(d.size) for d in feature.shape.dim) + "]"
    if feature.HasField("value_count"):
        return f"{feature.value_count.min}..{feature.value_count.max or '∞'} values"
    return "-"


def _domain(feature: Any, string_domains: dict[str, Any]) -> str:
    kind = feature.WhichOneof("domain_info")
    if kind == "domain":
        values = string_domains[feature.domain].value if feature.domain in string_domains else []
        return f"{feature.domain}: " + _some(list(values))
    if kind == "string_domain":
        return _some(list(feature.string_domain.value))
    if kind in ("int_domain", "float_domain"):
        d = getattr(feature, kind)
        low = _num(d.min) if d.HasField("min") else "-∞"
        high = _num(d.max) if d.HasField("max") else "∞"
        return f"[{low}, {high}]"
    return kind or "-"


def _some(values: list[str], limit: int = 8) -> str:
    more = f", … ({len(values) - limit} more)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


# --- ExampleAnomalies ----------------------------------------------------------------------------
def _anomalies(artifact: Artifact) -> tuple[Section, ...]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    sections: list[Section] = []
    for split, anomalies in _split_protos(artifact, ANOMALIES_FILE, anomalies_pb2.Anomalies, sections):
        rows = [
            (name, info.short_description, info.description) for name, info in anomalies.anomaly_info.items()
        ]
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            rows.append(("(dataset)", info.short_description, info.description))
        header = ("feature", "anomaly", "description")
        sections.append(Table(f"split {split}", header, tuple(sorted(rows)), empty="no anomalies"))
    return tuple(sections)


# --- ModelEvaluation, blessings ------------------------------------------------------------------
def _evaluation(artifact: Artifact) -> tuple[Section, ...]:
    path = os.path.join(artifact.uri, SUMMARY_FILE)
    if not os.path.isfile(path):
        return (_missing(path), *_files(artifact))
    with open(path, encoding="utf-8") as f:
        return (Preformatted("summary", f.read().rstrip()),)


def _blessing(artifact: Artifact) -> tuple[Section, ...]:
    """The verdict from the ``blessed`` property, else from the marker file the executor wrote."""
    prefix = "INFRA_" if artifact.type_name == "InfraBlessing" else ""
    blessed = artifact.custom_properties.get("blessed")
    if blessed is None:
        blessed = int(os.path.exists(os.path.join(artifact.uri, f"{prefix}BLESSED")))
    return (Preformatted("verdict", "BLESSED" if int(blessed) else "NOT BLESSED"),)


# --- Examples ------------------------------------------------------------------------------------
def _examples(artifact: Artifact) -> tuple[Section, ...]:
    splits = _splits(artifact)
    counts = tuple((split, str(artifact.custom_properties.get(f"num_rows_{split}", "?"))) for split in splits)
    sections: list[Section] = [Table("splits", ("split", "rows"), counts)]
    for split in splits:
        files = sorted(glob.glob(os.path.join(artifact.split_uri(split), "*.gz")))
        if not files:
            sections.append(_missing(os.path.join(artifact.split_uri(split), "*.gz")))
            continue
        from mlpipe.io.examples import read_tfrecords

        records = read_tfrecords(files, limit=EXAMPLE_ROWS)
        sections.append(_example_rows(f"split {split}: first {len(records)} rows", records))
    return tuple(sections)


def _example_rows(title: str, records: list[bytes]) -> Table:
    if not records:
        return Table(title, (), ())
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    batch = ExamplesToRecordBatchDecoder().DecodeBatch(records)
    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
    rows = tuple(tuple(_value(column[r]) for column in columns) for r in range(batch.num_rows))
    return Table(title, tuple(batch.schema.names), rows)


def _value(values: list[Any] | None) -> str:
    """A tf.Example feature as text: empty when absent, the scalar when there is one value."""
    if not values:
        return ""
    shown = [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else _num(v) if isinstance(v, float) else str(v)
        for v in values
    ]
    return shown[0] if len(shown) == 1 else "[" + ", ".join(shown) + "]"


# --- any other type ------------------------------------------------------------------------------
def _files(artifact: Artifact) -> tuple[Section, ...]:
    found = []
    for root, dirs, names in os.walk(artifact.uri):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            found.append((os.path.relpath(path, artifact.uri), _size(os.path.getsize(path))))
    rows = found[:MAX_FILES]
    if len(found) > MAX_FILES:
        rows.append((f"… {len(found) - MAX_FILES} more files", ""))
    return (Table("files", ("path", "size"), tuple(rows), empty="no files"),)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    exponent = min(int(math.log(n, 1024)), 3)
    return f"{n / 1024**exponent:.1f} {'KMG'[exponent - 1]}B"


_READERS: dict[str, Callable[[Artifact], tuple[Section, ...]]] = {
    "ExampleStatistics": _statistics,
    "Schema": _schema,
    "ExampleAnomalies": _anomalies,
    "ModelEvaluation": _evaluation,
    "ModelBlessing": _blessing,
    "InfraBlessing": _blessing,
    "Examples": _examples,
}
