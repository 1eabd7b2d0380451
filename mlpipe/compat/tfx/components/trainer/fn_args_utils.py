"""``tfx.components.trainer.fn_args_utils``: ``FnArgs`` and ``DataAccessor`` for module files."""

from mlpipe.components.fn_args import DataAccessor, FnArgs

__all__ = ["DataAccessor", "FnArgs"]
