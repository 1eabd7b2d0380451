"""``tfx.components.trainer.executor``: ``TrainerFnArgs`` (TFX's older name of FnArgs) and the
``GenericExecutor`` marker older pipelines pass as ``custom_executor_spec``."""

from mlpipe.components.fn_args import FnArgs

TrainerFnArgs = FnArgs


class GenericExecutor:
    """Stands for TFX's run_fn-based executor, which is the only one mlpipe's Trainer has."""


Executor = GenericExecutor

__all__ = ["Executor", "GenericExecutor", "TrainerFnArgs"]
