"""``tfx.utils``: the helpers module files use."""

from typing import Any

from mlpipe.compat.tfx.unsupported import module_getattr
from mlpipe.compat.tfx.utils import io_utils

__all__ = ["io_utils"]


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.utils", name)
