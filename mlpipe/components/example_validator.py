"""ExampleValidator: statistics + schema (+ a baseline) -> ExampleAnomalies (``Split-<name>/SchemaDiff.pb``).

The anomalies are TFDV's ``Anomalies`` proto, as TFX writes them, so ``tfdv.display_anomalies``
works on them. With ``fail_on_anomalies`` the node raises ValidationFailure *after* writing: the
launcher publishes the anomalies for inspection, records the execution FAILED and stops the run,
so bad data never reaches the Trainer unnoticed.

Drift and skew use TFDV's own comparators, as its documentation describes: the thresholds given
here are set on a copy of the schema (the schema artifact stays what the team curated), and
``tfdv.validate_statistics`` gets the baseline as ``previous_statistics`` (drift, split by split)
or the second split as ``serving_statistics`` (skew, e.g. train vs eval). The baseline is usually
the previous span's statistics, from ``Resolver(strategy="latest_artifact",
statistics=ExampleStatistics)``; on the first run there is none and drift is not checked.
"""

from __future__ import annotations

import os
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError, ValidationFailure
from mlpipe.types.standard import ExampleAnomalies, ExampleStatistics, Schema

ANOMALIES_FILE = "SchemaDiff.pb"
COMPARATORS = ("infinity_norm", "jensen_shannon_divergence")


def check_comparators(parameter: str, comparators: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """``{feature: {"infinity_norm" | "jensen_shannon_divergence": threshold}}``, checked.

    L-infinity compares category frequencies (string features); Jensen-Shannon divergence
    compares histograms (numeric features, and categories).
    """
    example = '{"payment_type": {"infinity_norm": 0.1}, "fare": {"jensen_shannon_divergence": 0.1}}'
    checked: dict[str, dict[str, float]] = {}
    for feature, thresholds in (comparators or {}).items():
        if not isinstance(thresholds, dict) or not thresholds or not set(thresholds) <= set(COMPARATORS):
            raise DefinitionError(
                f"ExampleValidator: {parameter}[{feature!r}] must map {list(COMPARATORS)} to thresholds, "
                f"got {thresholds!r}; e.g. {example}"
            )
        for name, value in thresholds.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise DefinitionError(
                    f"ExampleValidator: {parameter}[{feature!r}][{name!r}] must be a number in [0, 1], "
                    f"got {value!r}"
                )
        checked[feature] = {k: float(v) for k, v in thresholds.items()}
    return checked


class ExampleValidator(Component):
    """Schema anomalies of every split; drift against ``baseline_statistics`` and train/eval skew
    for the features named in ``drift_comparator`` / ``skew_comparator``."""

    SPEC = ComponentSpec(
        inputs={
            "statistics": ExampleStatistics,
            "schema": Schema,
            "baseline_statistics": InputSpec(ExampleStatistics, optional=True),
        },
        outputs={"anomalies": ExampleAnomalies},
        parameters={
            "fail_on_anomalies": ParameterSpec(bool, default=True),
            "drift_comparator": ParameterSpec(dict, default=None),
            "skew_comparator": ParameterSpec(dict, default=None),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        check_comparators("drift_comparator", self.parameters["drift_comparator"])
        check_comparators("skew_comparator", self.parameters["skew_comparator"])

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow_data_validation as tfdv

        from mlpipe.io.schema_file import SCHEMA_FILE

        statistics, schema_artifact = ctx.input("statistics"), ctx.input("schema")
        assert statistics is not None and schema_artifact is not None
        baseline = ctx.input("baseline_statistics")
        drift = check_comparators("drift_comparator", ctx.parameters["drift_comparator"])
        skew = check_comparators("skew_comparator", ctx.parameters["skew_comparator"])
        schema_path = os.path.join(schema_artifact.uri, SCHEMA_FILE)
        schema = with_comparators(tfdv.load_schema_text(schema_path), schema_path, drift, skew)
        splits = statistics.split_names
        if skew and len(splits) < 2:
            raise DataError(
                f"{statistics.uri}: skew_comparator compares the first split with the second, but the "
                f"statistics have only {splits}; drop skew_comparator or produce two splits"
            )
        if drift and baseline is None:
            ctx.log.info("no baseline_statistics (first run?): drift not checked")
        out = ctx.outputs["anomalies"]
        found: list[tuple[str, str, str]] = []
        for i, split in enumerate(splits):
            stats = load_split_statistics(statistics, split)
            previous = load_split_statistics(baseline, split) if drift and baseline is not None else None
            serving = load_split_statistics(statistics, splits[1]) if skew and i == 0 else None
            anomalies = tfdv.validate_statistics(
                stats, schema, previous_statistics=previous, serving_statistics=serving
            )
            if previous is not None:
                add_type_changes(anomalies, stats, previous, drift)
            os.makedirs(out.split_uri(split), exist_ok=True)
            with open(os.path.join(out.split_uri(split), ANOMALIES_FILE), "wb") as f:
                f.write(anomalies.SerializeToString())
            found += [(feature, _describe(info), split) for feature, info in anomalies.anomaly_info.items()]
            if anomalies.HasField("dataset_anomaly_info"):
                found.append(("(dataset)", _describe(anomalies.dataset_anomaly_info), split))
            out.set_custom_property(f"num_anomalies_{split}", len(anomalies.anomaly_info))
        out.set_property("span", statistics.get_property("span", 0))
        out.split_names = splits
        if baseline is not None:
            out.set_custom_property("baseline_statistics_id", baseline.id or 0)
            out.set_custom_property("baseline_span", baseline.get_property("span", 0))
        if found:
            ctx.log.warning("%d anomalies:\n%s", len(found), anomaly_table(found))
        if found and ctx.parameters["fail_on_anomalies"]:
            against = f" and baseline span {baseline.get_property('span', 0)}" if baseline and drift else ""
            raise ValidationFailure(
                f"{len(found)} data anomalies against the schema{against} (details in {out.uri}):\n"
                f"{anomaly_table(found)}\n"
                f"fix the data, or update the schema (or thresholds) if the change is intended"
            )


def load_split_statistics(statistics: Any, split: str) -> Any:
    """One split's ``DatasetFeatureStatisticsList``; a missing split is named with those present."""
    import tensorflow_data_validation as tfdv

    from mlpipe.components.statistics_gen import STATS_FILE

    path = os.path.join(statistics.split_uri(split), STATS_FILE)
    if not os.path.isfile(path):
        raise DataError(
            f"{statistics.uri}: no statistics of split {split!r} (splits: {statistics.split_names}); "
            f"compare statistics with the same split names"
        )
    return tfdv.load_stats_binary(path)


def with_comparators(
    schema: Any, schema_path: str, drift: dict[str, dict[str, float]], skew: dict[str, dict[str, float]]
) -> Any:
    """A copy of ``schema`` with the drift/skew thresholds set on its features."""
    copy = type(schema)()
    copy.CopyFrom(schema)
    features = {f.name: f for f in copy.feature}
    for field, comparators in (("drift_comparator", drift), ("skew_comparator", skew)):
        for name, thresholds in comparators.items():
            if name not in features:
                raise DataError(
                    f"{field}: feature {name!r} is not in the schema {schema_path} "
                    f"(features: {sorted(features)}); fix the name"
                )
            for comparator, threshold in thresholds.items():
                getattr(getattr(features[name], field), comparator).threshold = threshold
    return copy


def add_type_changes(anomalies: Any, current: Any, previous: Any, drift: dict[str, dict[str, float]]) -> None:
    """Report a drift-compared feature whose kind (number vs text) changed since the baseline.

    TFDV cannot compare a histogram with category frequencies, so it skips that comparison with
    only a C++ log warning; a column that turned from numbers into text is exactly the drift the
    check exists for.
    """
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    kinds_now, kinds_before = _feature_kinds(current), _feature_kinds(previous)
    for name in drift:
        now, before = kinds_now.get(name), kinds_before.get(name)
        if now is None or before is None or now == before:
            continue
        info = anomalies.anomaly_info[name]
        reason = info.reason.add(
            type=anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE,
            short_description=f"Type changed from {before} to {now} since the baseline",
            description=f"The baseline statistics have {name} as {before}, the current as {now}; "
            f"its distributions cannot be compared.",
        )
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.short_description = reason.short_description if len(info.reason) == 1 else "Multiple errors"
        info.description = " ".join(r.description for r in info.reason)


def _feature_kinds(statistics: Any) -> dict[str, str]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    kinds = {}
    for feature in statistics.datasets[0].features:
        name = ".".join(feature.path.step) or feature.name
        kinds[name] = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
    return kinds


def _describe(info: Any) -> str:
    """Every reason, not TFDV's "Multiple errors", so a drift next to a schema anomaly is seen."""
    return "; ".join(r.short_description for r in info.reason) or info.short_description


def anomaly_table(rows: list[tuple[str, str, str]]) -> str:
    """A fixed-width text table (feature, anomaly, split) that reads well in logs and errors."""
    header = ("feature", "anomaly", "split")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
