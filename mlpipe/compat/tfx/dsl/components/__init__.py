"""``tfx.dsl.components``: ``@component`` and its argument annotations (v1 names)."""

from typing import Any

from mlpipe.compat.tfx.dsl.component.experimental.annotations import (
    AsyncOutputArtifact,
    BeamComponentParameter,
    InputArtifact,
    OutputArtifact,
    OutputDict,
    Parameter,
)  # fmt: skip
from mlpipe.compat.tfx.dsl.component.experimental.decorators import component
from mlpipe.compat.tfx.unsupported import module_getattr

__all__ = [
    "AsyncOutputArtifact", "BeamComponentParameter", "InputArtifact", "OutputArtifact", "OutputDict",
    "Parameter", "component",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.dsl.components", name)
