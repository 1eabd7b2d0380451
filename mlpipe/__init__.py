"""mlpipe: production ML pipelines in the style of TFX.

The public names below are imported on first use, so ``import mlpipe`` stays fast and never
imports TensorFlow or Beam.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlpipe import _tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anyone imports TensorFlow)

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "mlpipe.dsl.pipeline",
    "Component": "mlpipe.dsl.component",
    "ComponentSpec": "mlpipe.dsl.spec",
    "ExecutionContext": "mlpipe.dsl.context",
    "component": "mlpipe.dsl.component",
    "InputArtifact": "mlpipe.dsl.annotations",
    "OutputArtifact": "mlpipe.dsl.annotations",
    "Parameter": "mlpipe.dsl.annotations",
    "ModuleFile": "mlpipe.dsl.annotations",
    "PipelineIR": "mlpipe.ir",
    "Resolver": "mlpipe.dsl.resolver",
    "Cond": "mlpipe.dsl.condition",
    "LocalDagRunner": "mlpipe.orchestration.local",
    "RunError": "mlpipe.orchestration.run_result",
    "InteractiveContext": "mlpipe.orchestration.interactive",
    "BeamDagRunner": "mlpipe.orchestration.beam",
    "approve": "mlpipe.orchestration.approvals",
}
_SUBMODULES = {
    "interactive",
    "dsl",
    "types",
    "metadata",
    "orchestration",
    "components",
    "serving",
    "errors",
    "ir",
    "io",
    "visualize",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"mlpipe.{name}")
    raise AttributeError(f"module 'mlpipe' has no attribute {name!r}")
