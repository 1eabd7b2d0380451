"""``tfx.orchestration.experimental``: the Kubeflow V2 runner."""

from typing import Any

from mlpipe.compat.tfx.orchestration.runners import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig
from mlpipe.compat.tfx.unsupported import module_getattr

__all__ = ["KubeflowV2DagRunner", "KubeflowV2DagRunnerConfig"]


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.orchestration.experimental", name)
