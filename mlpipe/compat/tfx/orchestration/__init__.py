"""``tfx.orchestration``: runners and metadata configuration."""

from typing import Any

from mlpipe.compat.tfx.orchestration import experimental, metadata, pipeline
from mlpipe.compat.tfx.orchestration.runners import LocalDagRunner
from mlpipe.compat.tfx.unsupported import module_getattr

__all__ = ["LocalDagRunner", "experimental", "metadata", "pipeline"]


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.orchestration", name)
