"""ExampleValidator: statistics + schema -> ExampleAnomalies (``Split-<name>/SchemaDiff.pb``).

The anomalies are TFDV's ``Anomalies`` proto, as TFX writes them, so ``tfdv.display_anomalies``
works on them. With ``fail_on_anomalies`` the node raises ValidationFailure *after* writing: the
launcher publishes the anomalies for inspection, records the execution FAILED and stops the run,
so bad data never reaches the Trainer unnoticed.
"""

from __future__ import annotations

import os
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import ValidationFailure
from mlpipe.types.standard import ExampleAnomalies, ExampleStatistics, Schema

ANOMALIES_FILE = "SchemaDiff.pb"


class ExampleValidator(Component):
    SPEC = ComponentSpec(
        inputs={"statistics": ExampleStatistics, "schema": Schema},
        outputs={"anomalies": ExampleAnomalies},
        parameters={"fail_on_anomalies": ParameterSpec(bool, default=True)},
    )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow_data_validation as tfdv

        from mlpipe.components.schema_gen import SCHEMA_FILE
        from mlpipe.components.statistics_gen import STATS_FILE

        statistics, schema_artifact = ctx.input("statistics"), ctx.input("schema")
        assert statistics is not None and schema_artifact is not None
        schema = tfdv.load_schema_text(os.path.join(schema_artifact.uri, SCHEMA_FILE))
        out = ctx.outputs["anomalies"]
        found: list[tuple[str, str, str]] = []
        for split in statistics.split_names:
            stats = tfdv.load_stats_binary(os.path.join(statistics.split_uri(split), STATS_FILE))
            anomalies = tfdv.validate_statistics(stats, schema)
            os.makedirs(out.split_uri(split), exist_ok=True)
            with open(os.path.join(out.split_uri(split), ANOMALIES_FILE), "wb") as f:
                f.write(anomalies.SerializeToString())
            found += [(feature, _describe(info), split) for feature, info in anomalies.anomaly_info.items()]
            if anomalies.HasField("dataset_anomaly_info"):
                found.append(("(dataset)", _describe(anomalies.dataset_anomaly_info), split))
            out.set_custom_property(f"num_anomalies_{split}", len(anomalies.anomaly_info))
        out.set_property("span", statistics.get_property("span", 0))
        out.split_names = statistics.split_names
        if found:
            ctx.log.warning("%d anomalies:\n%s", len(found), anomaly_table(found))
        if found and ctx.parameters["fail_on_anomalies"]:
            raise ValidationFailure(
                f"{len(found)} data anomalies against the schema (details in {out.uri}):\n"
                f"{anomaly_table(found)}\n"
                f"fix the data, or update the schema if the change is intended"
            )


def _describe(info: Any) -> str:
    return info.short_description or "; ".join(r.short_description for r in info.reason)


def anomaly_table(rows: list[tuple[str, str, str]]) -> str:
    """A fixed-width text table (feature, anomaly, split) that reads well in logs and errors."""
    header = ("feature", "anomaly", "split")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
