"""Cache keys: what must be equal for a previous execution's outputs to stand in for a new one.

The key covers the component's identity, its VERSION and its *source code* (so editing an
executor re-runs it), the parameters, the contents of every ModuleFile or FunctionPath parameter (user module
code), the ids of the input artifacts, and the declared outputs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component, FunctionComponent
from mlpipe.errors import DefinitionError
from mlpipe.ir import NodeIR
from mlpipe.metadata.store import stored_value
from mlpipe.types.artifact import Artifact


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Nodes compute their cache keys on their own threads. ``inspect.getsource`` of a class parses its
# module with ``ast``, and CPython 3.11's AST constructor keeps its recursion depth per interpreter,
# not per thread: two threads parsing at once can fail with "SystemError: AST constructor recursion
# depth mismatch" (python/cpython#106905; seen as a failed CsvExampleGen in CI). One at a time.
_fingerprint_lock = threading.Lock()


def component_fingerprint(cls: type[Component]) -> str:
    """Hash of the component's code: the function for ``@component``, else the class and every
    base class it inherits its executor from (a shared base's change must re-run its subclasses).

    Cached per class object: the code a class runs cannot change, and a redefined component
    (edited file re-imported, notebook cell re-run) is a new class object. Helper functions a
    component calls are not hashed: bump ``VERSION`` (``@component(version=...)``) when they change.
    """
    with _fingerprint_lock:
        return _fingerprint(cls)


@functools.cache
def _fingerprint(cls: type[Component]) -> str:
    if issubclass(cls, FunctionComponent):
        targets: list[object] = [cls.FUNCTION]
    else:
        targets = [c for c in cls.__mro__ if issubclass(c, Component) and c is not Component]
    parts = [cls.VERSION]
    for target in targets:
        try:
            parts.append(inspect.getsource(target))  # type: ignore[arg-type]
        except (OSError, TypeError):  # defined where no source is kept (e.g. exec'd code)
            parts.append(f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', '')}")
    return _sha256("\n".join(parts).encode())


def module_file_path(node_id: str, name: str, value: str) -> str:
    """A ModuleFile value is a path or an importable module name; return the file it denotes."""
    if os.path.isfile(value):
        return os.path.abspath(value)
    if not value.endswith(".py"):
        spec = importlib.util.find_spec(value)
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            return spec.origin
    raise DefinitionError(
        f"node '{node_id}': parameter '{name}' = {value!r} is neither an existing file nor an importable module"
    )


def module_file_hashes(cls: type[Component], node: NodeIR) -> dict[str, str]:
    hashes = {}
    for name, spec in cls.SPEC.parameters.items():
        value = node.parameters.get(name)
        if spec.type is FunctionPath and value:
            value = value.rpartition(".")[0]  # the module that defines the function
        if spec.type in (ModuleFile, FunctionPath) and value:
            with open(module_file_path(node.id, name, value), "rb") as f:
                hashes[name] = _sha256(f.read())
    return hashes


@dataclass(frozen=True)
class CacheKey:
    """A node's cache key and the named parts it is made of.

    The parts are recorded with each execution so that a later miss can say what changed (TFX
    only says that a component ran again). Names: ``code``, ``parameter <name>``,
    ``module file <name>``, ``input <key>`` (the artifact ids) and ``outputs``.
    """

    digest: str
    parts: dict[str, str]


def cache_key(cls: type[Component], node: NodeIR, inputs: Mapping[str, list[Artifact]]) -> CacheKey:
    module_files = module_file_hashes(cls, node)
    input_ids = {k: [a.id for a in v] for k, v in sorted(cls.inputs_for_cache(inputs).items())}
    payload: dict[str, Any] = {
        "component": cls.__qualname__,  # not the module: a file run as a script or imported is the same code
        "fingerprint": component_fingerprint(cls),
        "parameters": node.parameters,
        "module_files": module_files,
        "inputs": input_ids,
        "outputs": node.outputs,
    }
    parts = {
        "code": _short_hash([payload["component"], payload["fingerprint"]]),
        **{f"parameter {name}": _short_hash(value) for name, value in node.parameters.items()},
        **{f"module file {name}": digest[:16] for name, digest in module_files.items()},
        **{f"input {key}": ",".join(str(i) for i in ids) for key, ids in input_ids.items()},
        "outputs": _short_hash(node.outputs),
    }
    return CacheKey(_sha256(_canonical_json(payload)), parts)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


def _short_hash(value: Any) -> str:
    return _sha256(_canonical_json(value))[:16]


def explain_cache_miss(
    previous: Mapping[str, str], current: Mapping[str, str], previous_values: Mapping[str, Any], node: NodeIR
) -> str:
    """What differs between an earlier execution's key parts and this one's, in words.

    ``previous_values`` are the earlier execution's stored properties (its parameter values, stored
    as MLMD properties are), so a changed parameter is shown with its old and new value.
    """
    order = ("code", "parameter", "module", "input", "outputs")
    reasons = []
    for name in sorted(set(previous) | set(current), key=lambda n: (order.index(n.split(" ")[0]), n)):
        if previous.get(name) == current.get(name):
            continue
        kind, _, key = name.partition(" ")
        if name == "code":
            reasons.append("the component's code or VERSION changed")
        elif name == "outputs":
            reasons.append("the node's declared outputs changed")
        elif kind == "parameter":
            reasons.append(_parameter_change(key, previous_values.get(key), node.parameters.get(key)))
        elif name.startswith("module file "):
            reasons.append(f"the module file of '{name.removeprefix('module file ')}' changed")
        else:  # input
            reasons.append(f"input '{key}' is {_ids(current.get(name))} (was {_ids(previous.get(name))})")
    return "; ".join(reasons)


def _parameter_change(name: str, old: Any, new: Any) -> str:
    """``old`` as the earlier execution stored it; ``new`` is converted the same way to compare."""
    old_shown, new_shown = (v if isinstance(v, str) else repr(v) for v in (old, stored_value(new)))
    if len(old_shown) + len(new_shown) > 120:
        return f"parameter '{name}' changed"
    return f"parameter '{name}' changed: {old_shown} -> {new_shown}"


def _ids(joined: str | None) -> str:
    if not joined:
        return "no artifact"
    return f"artifact{'s' if ',' in joined else ''} {joined}"
