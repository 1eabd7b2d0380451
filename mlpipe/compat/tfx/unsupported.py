"""What the TFX compatibility layer does not cover, and the loud error that says so.

A TFX pipeline that uses something mlpipe cannot honour must stop at that line with the TFX name
and the closest mlpipe way, never run differently in silence. :data:`HINTS` is that list; the
import hook consults it for ``import tfx.<path>`` and the compat modules for ``tfx.<module>.<name>``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlpipe.errors import DefinitionError

PREFIX = "mlpipe.compat.tfx"

#: TFX symbol (dotted, without "tfx.") -> the closest mlpipe way. Longest matching prefix wins.
HINTS: dict[str, str] = {
    "extensions": "TFX's cloud extensions are not supported; run the standard components and use "
    "mlpipe's Kubeflow or Beam runners (beam_pipeline_args name Dataflow) for scale-out",
    "extensions.google_cloud_ai_platform": "Vertex AI training/tuning/pushing is not supported; use "
    "tfx.components.Trainer/Tuner/Pusher (mlpipe runs them wherever the node runs) and `mlpipe serve`",
    "extensions.google_cloud_big_query": "BigQueryExampleGen is not supported; export to CSV/Parquet "
    "and use CsvExampleGen, or mlpipe.components.sql_example_gen.SqlExampleGen for a SQL database",
    "components.ExampleDiff": "ExampleDiff is not supported; compare statistics with "
    "ExampleValidator's drift/skew comparators (mlpipe.components.example_validator)",
    "components.DistributionValidator": "DistributionValidator is not supported; use ExampleValidator "
    "with drift_comparator (mlpipe.components.example_validator)",
    "dsl.experimental.create_container_component": "container components are not supported; write a "
    "@tfx.dsl.components.component Python function that runs the program with subprocess",
    "dsl.experimental.RuntimeParameter": "runtime parameters are not supported; read the value from "
    "an environment variable in the pipeline file",
    "dsl.experimental.SpanRangeStrategy": "SpanRangeStrategy is not supported; give ExampleGen a "
    "range_config (tfx.proto.RangeConfig) to read a span range",
    "dsl.placeholders": "placeholders are not supported; pass literal values",
    "dsl.components.AsyncOutputArtifact": "asynchronous outputs are not supported; use OutputArtifact",
    "dsl.components.BeamComponentParameter": "Beam function components are not supported; create a "
    "beam.Pipeline inside the function",
    "dsl.ExecutionMode": "only synchronous pipelines exist in mlpipe; drop execution_mode",
    "orchestration.experimental.exit_handler": "exit handlers are not supported; inspect the run "
    "with `mlpipe runs` / `mlpipe show RUN_ID`",
    "orchestration.kubeflow": "TFX's Kubeflow V1 runner is not supported; use "
    "tfx.orchestration.experimental.KubeflowV2DagRunner (mlpipe compiles a KFP v2 spec)",
    "testing": "tfx.testing is not supported; test pipelines by running them with LocalDagRunner",
}


class UnsupportedTfxFeature(DefinitionError, ImportError):
    """A TFX symbol mlpipe does not provide. Also an ImportError, so TFX-style
    ``try: import ... except ImportError`` fallbacks keep working."""

    def __init__(self, symbol: str, hint: str | None = None):
        hint = hint or hint_for(symbol)
        super().__init__(
            f"{symbol} is not supported by mlpipe's TFX compatibility layer: {hint} "
            f"(see docs/migrating-from-tfx.md)"
        )
        self.symbol = symbol


def hint_for(symbol: str) -> str:
    """The HINTS entry of the longest prefix of ``symbol`` (``tfx.`` stripped), or a general one."""
    parts = symbol.removeprefix("tfx.").split(".")
    for n in range(len(parts), 0, -1):
        hint = HINTS.get(".".join(parts[:n]))
        if hint:
            return hint
    return "mlpipe has no equivalent of it; the supported TFX symbols are listed in the table"


def import_compat_module(tfx_name: str) -> ModuleType:
    """The compat module for ``tfx.<path>``, or an UnsupportedTfxFeature naming that path."""
    target = PREFIX + tfx_name.removeprefix("tfx")
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        if e.name is not None and (target == e.name or target.startswith(e.name + ".")):
            raise UnsupportedTfxFeature(tfx_name) from None
        raise


def module_getattr(tfx_module: str, name: str) -> ModuleType:
    """For a compat module's ``__getattr__``: the submodule ``tfx_module.name`` (``from tfx.proto
    import trainer_pb2`` asks the package first), else the error naming ``tfx_module.name``."""
    if name.startswith("_"):
        raise AttributeError(name)
    return import_compat_module(f"{tfx_module}.{name}")
