"""Cache keys: what must be equal for a previous execution's outputs to stand in for a new one;
which earlier execution does, or why none can.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component, FunctionComponent
from mlpipe.errors import DefinitionError
from mlpipe.ir import NodeIR
from mlpipe.metadata.store import CACHE_KEY, CACHE_KEY_PARTS, MetadataStore, execution_property
from mlpipe.orchestration.inputs import artifacts_available
from mlpipe.types.artifact import LIVE, Artifact


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
        return _fingerprint(cls)  # type: ignore[arg-type]  # classes are hashable; mypy checks type[C] by C.__hash__


@functools.cache
def _fingerprint(cls: type[Component]) -> str:
    if issubclass(cls, FunctionComponent):
        targets: list[Callable[..., Any]] = [cls.FUNCTION]
    else:
        targets = [c for c in cls.__mro__ if issubclass(c, Component) and c is not Component]
    parts = [cls.VERSION]
    for target in targets:
        try:
            parts.append(inspect.getsource(target))
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
    only says that a component ran again): ``code``, ``parameter:<name>``, ``module_file:<name>``,
    ``input:<key>`` (the artifact ids) and ``outputs``. A parameter's part is its JSON text when
    short, so a message can show the old and the new value, else a hash of it.
    """

    digest: str
    parts: Mapping[str, str]


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
        "code": _hashed([payload["component"], payload["fingerprint"]]),
        **{f"parameter:{name}": _shown_or_hashed(value) for name, value in node.parameters.items()},
        **{f"module_file:{name}": f"sha256:{digest[:16]}" for name, digest in module_files.items()},
        **{f"input:{key}": ",".join(str(i) for i in ids) for key, ids in input_ids.items()},
        "outputs": _hashed(node.outputs),
    }
    return CacheKey(_sha256(_canonical_json(payload)), parts)


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


def _hashed(value: Any) -> str:
    return f"sha256:{_sha256(_canonical_json(value))[:16]}"


_SHOWN_VALUE_CHARS = 60


def _shown_or_hashed(value: Any) -> str:
    text = _canonical_json(value).decode()
    return text if len(text) <= _SHOWN_VALUE_CHARS else _hashed(value)


_PART_ORDER = ("code", "parameter", "module_file", "input", "outputs")


def explain_cache_miss(previous: Mapping[str, str], current: Mapping[str, str]) -> str:
    """What differs between an earlier execution's key parts and this one's, in words; "" if nothing."""

    def rank(name: str) -> tuple[int, str]:
        kind = name.partition(":")[0]
        return (_PART_ORDER.index(kind) if kind in _PART_ORDER else len(_PART_ORDER), name)

    reasons = []
    for name in sorted(set(previous) | set(current), key=rank):
        old, new = previous.get(name), current.get(name)
        if old == new:
            continue
        kind, _, key = name.partition(":")
        if kind == "code":
            reasons.append("the component's code or VERSION changed")
        elif kind == "outputs":
            reasons.append("the node's declared outputs changed")
        elif kind == "parameter":
            reasons.append(_parameter_change(key, old, new))
        elif kind == "module_file":
            reasons.append(f"the module file of '{key}' changed")
        elif kind == "input":
            reasons.append(f"input '{key}': {_artifacts(new)} (was {_artifacts(old)})")
        else:  # a part a newer mlpipe records
            reasons.append(f"'{name}' changed")
    return "; ".join(reasons)


def _parameter_change(name: str, old: str | None, new: str | None) -> str:
    """Values are shown unless only their hash was kept (too long)."""

    def shown(part: str | None) -> bool:
        return part is not None and not part.startswith("sha256:")

    if old is None:
        return f"parameter '{name}' was added" + (f": {new}" if shown(new) else "")
    if new is None:
        return f"parameter '{name}' was removed" + (f" (was {old})" if shown(old) else "")
    if shown(old) and shown(new):
        return f"parameter '{name}' changed: {old} -> {new}"
    return f"parameter '{name}' changed"


def _artifacts(joined: str | None) -> str:
    if not joined:
        return "none"
    return f"artifact{'s' if ',' in joined else ''} {joined}"


FIRST_EXECUTION = "no earlier successful execution of this node"  # the cache miss of a new node


def find_cached_outputs(
    store: MetadataStore,
    executions: list[Any],
    key: str,
    classes: Mapping[str, type[Artifact]],
    mark_deleted: bool = True,
) -> tuple[int, dict[str, list[Artifact]]] | None:
    """The newest COMPLETE execution among a node's ``executions`` with this key whose output
    files all still exist, and its outputs (as ``classes``, the node's output types by key, so a
    value artifact of a user's type can be read).

    Artifacts whose directory was deleted are marked DELETED (unless ``mark_deleted`` is false, as
    for a plan) so no query offers them again.
    """
    for execution in sorted(_completed_with_key(executions, key), key=lambda e: e.id, reverse=True):
        outputs = store.output_artifacts(execution.id, classes)
        artifacts = [a for arts in outputs.values() for a in arts]
        if artifacts_available(artifacts):
            return execution.id, outputs
        if mark_deleted:
            store.mark_artifacts(
                [a for a in artifacts if a.state == LIVE and not os.path.exists(a.uri)], "DELETED"
            )
    return None


def _completed_with_key(executions: list[Any], key: str) -> list[Any]:
    """The COMPLETE executions with this cache key: the ones whose outputs a new execution may reuse."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    return [
        e
        for e in executions
        if e.last_known_state == pb.Execution.COMPLETE and execution_property(e, CACHE_KEY) == key
    ]


def cache_miss_reason(executions: list[Any], key: CacheKey) -> str:
    """Why none of a node's earlier ``executions`` can stand in: an execution with this very key
    lost its outputs, or what changed since the newest successful one."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    same_key = _completed_with_key(executions, key.digest)
    if same_key:
        lost = max(same_key, key=lambda e: e.id)
        return f"the outputs of execution {lost.id}, which had the same cache key, are gone from disk"
    succeeded = [e for e in executions if e.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED)]
    if not succeeded:
        return FIRST_EXECUTION
    newest = max(succeeded, key=lambda e: e.id)
    recorded = execution_property(newest, CACHE_KEY_PARTS)
    if recorded is None:
        return f"execution {newest.id} (an older mlpipe) did not record its cache key's parts: cannot say what changed"
    changes = explain_cache_miss(json.loads(recorded), key.parts)
    return f"since execution {newest.id}: {changes or 'its cache key changed'}"
