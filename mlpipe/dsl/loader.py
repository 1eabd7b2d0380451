"""Loading a pipeline definition file, as ``mlpipe run FILE`` does.

The file is imported as a module named after it (its folder on sys.path), so components defined
in it have a stable import path that other processes (Airflow, Kubeflow tasks) can import too.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """The pipeline a file defines: the result of its ``create_pipeline()``, or its one Pipeline object."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise DefinitionError(f"pipeline file {path} does not exist")
    folder, name = os.path.split(path)
    module_name = os.path.splitext(name)[0]
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    factory = getattr(module, "create_pipeline", None)
    if callable(factory):
        pipeline = factory()
        if not isinstance(pipeline, Pipeline):
            raise DefinitionError(
                f"{path}: create_pipeline() returned {type(pipeline).__name__}, not a Pipeline"
            )
        return pipeline
    found = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if len(found) != 1:
        raise DefinitionError(
            f"{path} must define create_pipeline() or exactly one Pipeline object (found {len(found)})"
        )
    return found[0]
