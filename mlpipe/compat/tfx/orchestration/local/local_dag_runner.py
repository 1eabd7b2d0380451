"""``tfx.orchestration.local.local_dag_runner``."""

from mlpipe.compat.tfx.orchestration.runners import LocalDagRunner

__all__ = ["LocalDagRunner"]
