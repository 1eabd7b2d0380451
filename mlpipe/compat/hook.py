"""``import tfx`` resolves to :mod:`mlpipe.compat.tfx` when the real TFX is not importable.

TFX code starts with ``from tfx import v1 as tfx`` (pipelines) or
``from tfx.components.trainer.fn_args_utils import FnArgs`` (module files). mlpipe installs this
hook wherever it loads user code — ``mlpipe run``/``compile`` (pipeline files), the node entry
point of remote runners, and module files — and users opt in for their own scripts and notebooks
with one line, an import of ``mlpipe.compat.tfx_import``, before ``from tfx import v1 as tfx``.

It is an import hook (a ``sys.meta_path`` finder), not a package named ``tfx`` in site-packages: if
a real ``tfx`` is importable, :func:`install` does nothing and TFX's own code runs. Installing costs
one path lookup and imports nothing heavy; the compat modules load when the user's code imports them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType

TARGET = "mlpipe.compat.tfx"
_lock = threading.Lock()


class TfxAliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tfx`` and ``tfx.<path>`` as the module ``mlpipe.compat.tfx.<path>`` (the same object,
    so ``tfx.components.Trainer is mlpipe.compat.tfx.components.Trainer``)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        if fullname != "tfx" and not fullname.startswith("tfx."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        from mlpipe.compat.tfx.unsupported import import_compat_module

        module = import_compat_module(spec.name)
        spec.loader_state = module.__spec__  # the import system overwrites it; exec_module restores it
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the compat module is imported already); keep its own ``__spec__``."""
        assert module.__spec__ is not None
        original = module.__spec__.loader_state
        if original is not None:
            module.__spec__ = original


def real_tfx_importable() -> bool:
    """True when something other than this hook provides ``tfx`` (a real TFX, or any stand-in)."""
    module = sys.modules.get("tfx")
    if module is not None:
        return not module.__name__.startswith(TARGET)
    try:
        spec = importlib.util.find_spec("tfx")
    except (ImportError, ValueError):
        return False
    return spec is not None and not isinstance(spec.loader, TfxAliasFinder)


def install() -> bool:
    """Hook ``tfx`` to the compatibility layer unless a real TFX is importable; True if hooked.

    Idempotent and thread-safe; cheap enough to call before every module load.
    """
    with _lock:
        if any(isinstance(f, TfxAliasFinder) for f in sys.meta_path):
            return True
        if real_tfx_importable():
            return False
        sys.meta_path.insert(0, TfxAliasFinder())  # before PathFinder, which would load tfx.<sub> anew
        return True


def installed() -> bool:
    """True when this hook (not a real TFX) answers ``import tfx``."""
    return any(isinstance(f, TfxAliasFinder) for f in sys.meta_path)
