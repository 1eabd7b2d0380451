"""``tfx.v1``: TFX's stable public API (``from tfx import v1 as tfx``), on mlpipe."""

from typing import Any

from mlpipe.compat.tfx import components, dsl, orchestration, proto, types, utils
from mlpipe.compat.tfx.unsupported import module_getattr

__version__ = "1.16.0"

__all__ = ["components", "dsl", "orchestration", "proto", "types", "utils"]


def __getattr__(name: str) -> Any:
    return module_getattr("tfx", name)
