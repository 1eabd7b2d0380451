"""Loading a pipeline definition file, as ``mlpipe run FILE`` does.

The file is imported as a module named after it (its folder on sys.path), so components defined
in it have a stable import path that other processes (Airflow, Kubeflow tasks) can import too.

A TFX file (one that imports ``tfx``) defining neither ``create_pipeline()`` nor a Pipeline object
— it builds its pipeline in ``if __name__ == "__main__": LocalDagRunner().run(...)`` — is run again
as ``__main__``; runners that call :func:`hand_over` while it runs give their pipeline to the loader
instead of running it. ``import tfx`` in the file resolves to mlpipe's TFX layer (see
:mod:`mlpipe.compat.hook`) unless a real TFX is installed.
"""

from __future__ import annotations

import contextvars
import importlib.util
import inspect
import os
import runpy
import sys

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """The pipeline a file defines: the result of its ``create_pipeline()``, or its one Pipeline object."""
    from mlpipe.compat.hook import install

    install()
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
    if callable(factory) and _takes_no_arguments(factory):
        pipeline = factory()
        if not isinstance(pipeline, Pipeline):
            raise DefinitionError(
                f"{path}: create_pipeline() returned {type(pipeline).__name__}, not a Pipeline"
            )
        return pipeline
    found = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if not found and _uses_tfx_layer(module):
        found = _run_as_main(path)
    if len(found) != 1:
        raise DefinitionError(
            f"{path} must define create_pipeline() or exactly one Pipeline object, or hand one pipeline "
            f"to a runner under `if __name__ == '__main__':` (found {len(found)})"
        )
    return found[0]


_handed_over: contextvars.ContextVar[list[Pipeline] | None] = contextvars.ContextVar(
    "mlpipe_handed_over", default=None
)


def hand_over(pipeline: Pipeline) -> bool:
    """For runners' ``run()``: True if a loader is collecting the pipeline a file's ``__main__``
    block runs (the runner must then return without running it), False otherwise."""
    collected = _handed_over.get()
    if collected is None:
        return False
    collected.append(pipeline)
    return True


def _uses_tfx_layer(module: object) -> bool:
    """True for a TFX file: it imported ``tfx`` (or names from it) through mlpipe's TFX layer, whose
    runners hand over. Other files' ``__main__`` blocks are never run here: they may run pipelines."""
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith("mlpipe.compat.tfx"):
            return True
    return False


def _run_as_main(path: str) -> list[Pipeline]:
    collected: list[Pipeline] = []
    token = _handed_over.set(collected)
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        _handed_over.reset(token)
    return collected


def _takes_no_arguments(factory: object) -> bool:
    try:
        return all(
            p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in inspect.signature(factory).parameters.values()  # type: ignore[arg-type]
        )
    except (TypeError, ValueError):
        return True
