"""Load user module code (``preprocessing_fn``, ``run_fn``, ``tuner_fn``) the way the cache sees it.

The cache key hashes a ModuleFile's *current* content, so the code that runs must be that content
too: every load executes the file anew instead of reusing a module object a previous execution left
in ``sys.modules`` (a long-lived process such as a notebook or a test session would otherwise run
the stale version while recording the new hash).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from mlpipe.compat.hook import install as install_tfx_hook
from mlpipe.errors import DefinitionError

_load_counter = itertools.count()


def load_module_file(module_file: str) -> ModuleType:
    """Execute ``module_file`` (a ``.py`` path or an importable module name) into a fresh module.

    TFX module files (``from tfx import v1 as tfx``) load unchanged: ``tfx`` resolves to mlpipe's
    TFX layer unless a real TFX is installed (:mod:`mlpipe.compat.hook`). A file that imports
    ``keras_tuner`` at its top (TFX's taxi module does) gets it bound to tf.keras first, whichever
    component loads it first in the process.
    """
    install_tfx_hook()
    if os.path.isfile(module_file):
        _bind_keras_tuner_if_imported(module_file)
        name = f"mlpipe_user_module_{next(_load_counter)}"
        spec = importlib.util.spec_from_file_location(name, os.path.abspath(module_file))
    else:
        spec = _find_importable(module_file)
    if spec is None or spec.loader is None:
        raise DefinitionError(
            f"module_file {module_file!r} is neither an existing .py file nor an importable module; "
            f"pass a path to the file or a dotted module name on sys.path"
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bind_keras_tuner_if_imported(path: str) -> None:
    with open(path, "rb") as f:
        if b"keras_tuner" not in f.read():
            return
    from mlpipe.components.keras2 import bind_keras_tuner_to_tf_keras

    bind_keras_tuner_to_tf_keras()  # no-op with MLPIPE_LIBRARY_PATCHES=off: KerasTuner binds as it decides


def _find_importable(name: str) -> importlib.machinery.ModuleSpec | None:
    if name.endswith(".py"):
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def load_function(module_file: str, function_name: str) -> Callable[..., Any]:
    """The function ``function_name`` defined by ``module_file``, with an error naming both if absent."""
    module = load_module_file(module_file)
    function = getattr(module, function_name, None)
    if not callable(function):
        where = getattr(module, "__file__", None) or module_file
        raise DefinitionError(
            f"module file {where} defines no function '{function_name}'; "
            f"add `def {function_name}(...)` to it or pass the right module_file"
        )
    return function


def load_function_path(path: str) -> Callable[..., Any]:
    """A function given as an import path ``package.module.function`` (loaded fresh, as above)."""
    module_name, _, function_name = path.rpartition(".")
    if not module_name:
        raise DefinitionError(f"{path!r} is not an import path; expected 'package.module.function_name'")
    return load_function(module_name, function_name)


def user_function(
    owner: str, parameters: dict[str, Any], function_name: str, path_parameter: str
) -> Callable[..., Any]:
    """The user function a component runs: ``module_file``'s ``function_name`` or the import path.

    Components accept either a ModuleFile (TFX's ``module_file``) or an import path parameter (TFX's
    ``run_fn``/``preprocessing_fn``); exactly one must be set.
    """
    check_function_source(owner, parameters, function_name, path_parameter)
    module_file = parameters.get("module_file")
    if module_file:
        return load_function(module_file, function_name)
    return load_function_path(parameters[path_parameter])


def check_function_source(
    owner: str, parameters: dict[str, Any], function_name: str, path_parameter: str
) -> None:
    """Refuse a component given both or neither of ``module_file`` and the import path parameter.

    Components call it when defined, so the mistake shows before a run starts.
    """
    if bool(parameters.get("module_file")) == bool(parameters.get(path_parameter)):
        raise DefinitionError(
            f"{owner}: pass exactly one of module_file=<file defining {function_name}> or "
            f"{path_parameter}='package.module.{function_name}'"
        )
