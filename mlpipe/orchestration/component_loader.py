"""Finding a node's component class from its IR reference, in any process."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading

from mlpipe.compat.hook import install as install_tfx_hook
from mlpipe.dsl.component import Component
from mlpipe.errors import DefinitionError
from mlpipe.ir import NodeIR, PipelineIR

_lock = threading.Lock()


def load_component_class(ir: PipelineIR, node: NodeIR) -> type[Component]:
    """Import ``module:QualName``; if the module is not importable by name (a pipeline file run as a
    script, a notebook-exported file), load it from the recorded source file under that name."""
    module_name, _, qualname = node.component.partition(":")
    with _lock:
        for path in ir.sys_path:
            if path not in sys.path:
                sys.path.append(path)
        module = sys.modules.get(module_name)
        if module is None or module_name == "__main__" and not _has(module, qualname):
            module = _import(module_name, node)
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise DefinitionError(f"node '{node.id}': {node.component} not found in {module.__file__}")
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise DefinitionError(f"node '{node.id}': {node.component} is not a component class")
    return obj


def _has(module: object, qualname: str) -> bool:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj is not None


def _import(module_name: str, node: NodeIR):  # noqa: ANN202
    install_tfx_hook()  # a component defined in a TFX pipeline file imports tfx (Beam workers, tasks)
    if module_name != "__main__":
        try:
            return importlib.import_module(module_name)
        except ImportError:
            if not node.source_file:
                raise
    if not node.source_file:
        raise DefinitionError(
            f"node '{node.id}': component {node.component} was defined interactively and cannot be loaded in "
            f"another process; define it in a .py file"
        )
    name = module_name if module_name != "__main__" else f"mlpipe_user_{abs(hash(node.source_file))}"
    spec = importlib.util.spec_from_file_location(name, node.source_file)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"node '{node.id}': cannot load {node.source_file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
