"""Pictures and tables of artifacts and pipelines, for terminals and notebooks.

Names are imported on first use, so ``import mlpipe.visualize`` costs nothing; the readers then
need only protobuf modules, never TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "render_text": "mlpipe.visualize.text",
    "render_html": "mlpipe.visualize.html",
    "dag_svg": "mlpipe.visualize.dag",
    "dag_html": "mlpipe.visualize.dag",
    "dag_text": "mlpipe.visualize.dag",
    "render_dag_file": "mlpipe.visualize.dag",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mlpipe.visualize' has no attribute '{name}'")
