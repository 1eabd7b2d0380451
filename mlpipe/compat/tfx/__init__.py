"""The ``tfx`` package's public surface, backed by mlpipe (see docs/migrating-from-tfx.md).

Reached as ``tfx`` through :mod:`mlpipe.compat.hook` when the real TFX is not installed. Submodules
load on first use, so ``import tfx`` stays as cheap as ``import mlpipe``.
"""

from __future__ import annotations

from types import ModuleType

#: The TFX release whose v1 API this layer follows.
__version__ = "1.16.0"


def __getattr__(name: str) -> ModuleType:
    from mlpipe.compat.tfx.unsupported import module_getattr

    return module_getattr("tfx", name)
