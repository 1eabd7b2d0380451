"""Cache keys: what must be equal for a previous execution's outputs to stand in for a new one;
which earlier execution does, or why none can.

The key covers the component's identity, its VERSION and its *source code* (so editing an
executor re-runs it); for a standard component (one whose class or a base of it is defined in
mlpipe) also every mlpipe module its module imports and mlpipe's version (see
:mod:`mlpipe.orchestration.code_digest` for why a closure of modules, and why the version too);
the parameters; the contents of every ModuleFile or FunctionPath parameter (user module code) and
of the helper modules of its folder it imports; the versions of the ML libraries all that code
imports; the ids of the input artifacts, and the declared outputs.

Each part is recorded by name with the execution, so a miss says what changed
(``mlpipe/components/tft_analysis.py changed``, ``tensorflow-transform 1.16.0 → 1.17.0``), and
``MLPIPE_CACHE_PIN`` can leave named parts out of the comparison when a user knows an upgrade
does not change the outputs (docs/caching.md).
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

import mlpipe
from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.dsl.component import Component, FunctionComponent
from mlpipe.errors import DefinitionError
from mlpipe.io.uris import is_remote
from mlpipe.ir import NodeIR
from mlpipe.metadata.store import CACHE_KEY, CACHE_KEY_PARTS, CACHED_FROM, MetadataStore, execution_property
from mlpipe.orchestration.code_digest import (
    LIBRARIES,
    CodeFiles,
    library_versions,
    mlpipe_closure,
    user_module_files,
)
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
    (edited file re-imported, notebook cell re-run) is a new class object. For a component defined
    outside mlpipe, helper functions it calls are not hashed: bump ``VERSION``
    (``@component(version=...)``) when they change. A standard component's helpers are covered by
    :func:`mlpipe_code` instead.
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
    """A ModuleFile value is a path, a bucket URI or an importable module name; return the (local)
    file it denotes."""
    if is_remote(value):
        from mlpipe.io.objstore_cache import localize_file

        return localize_file(value)
    if os.path.isfile(value):
        return os.path.abspath(value)
    if not value.endswith(".py"):
        spec = importlib.util.find_spec(value)
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            return spec.origin
    raise DefinitionError(
        f"node '{node_id}': parameter '{name}' = {value!r} is neither an existing file nor an importable module"
    )


def mlpipe_code(cls: type[Component]) -> CodeFiles:
    """The mlpipe modules the component's code imports (:func:`mlpipe_closure` of the modules that
    define it and the bases it inherits its executor from); none for a component defined outside mlpipe."""
    if issubclass(cls, FunctionComponent):
        modules = {cls.FUNCTION.__module__}
    else:
        modules = {c.__module__ for c in cls.__mro__ if issubclass(c, Component) and c is not Component}
    files: dict[str, str] = {}
    packages: set[str] = set()
    for module in sorted(m for m in modules if m == "mlpipe" or m.startswith("mlpipe.")):
        closure = mlpipe_closure(module)
        files.update(closure.files)
        packages |= closure.imported_packages
    return CodeFiles(files, frozenset(packages))


def module_file_paths(cls: type[Component], node: NodeIR) -> dict[str, str]:
    """The file of each ModuleFile or FunctionPath parameter that has a value, by parameter name."""
    paths = {}
    for name, spec in cls.SPEC.parameters.items():
        value = node.parameters.get(name)
        if spec.type is FunctionPath and value:
            value = value.rpartition(".")[0]  # the module that defines the function
        if spec.type in (ModuleFile, FunctionPath) and value:
            paths[name] = module_file_path(node.id, name, value)
    return paths


def module_file_hashes(cls: type[Component], node: NodeIR) -> dict[str, str]:
    hashes = {}
    for name, path in module_file_paths(cls, node).items():
        with open(path, "rb") as f:
            hashes[name] = _sha256(f.read())
    return hashes


@dataclass(frozen=True)
class CacheKey:
    """A node's cache key and the named parts it is made of.

    The parts are recorded with each execution so that a later miss can say what changed (TFX
    only says that a component ran again): ``code``, ``mlpipe`` (its version, for a component
    running mlpipe code), ``source:<file>`` (each mlpipe module in that code),
    ``library:<distribution>`` (its version), ``parameter:<name>``, ``module_file:<name>``,
    ``helper:<name>:<file>`` (a helper module the module file imports), ``input:<key>`` (the
    artifact ids), ``outputs`` and ``key_format`` (absent from executions recorded before the
    mlpipe, source, library and helper parts existed). A parameter's part is its JSON text when
    short, so a message can show the old and the new value, else a hash of it.

    ``pinned`` are the pin names of :data:`PIN_VARIABLE` in force: an execution whose parts
    differ only in pinned parts stands in too.
    """

    digest: str
    parts: Mapping[str, str]
    pinned: frozenset[str] = frozenset()


KEY_FORMAT = "2"  # recorded as the key_format part; explanations read older executions without it


def cache_key(cls: type[Component], node: NodeIR, inputs: Mapping[str, list[Artifact]]) -> CacheKey:
    module_paths = module_file_paths(cls, node)
    module_files = module_file_hashes(cls, node)
    code = mlpipe_code(cls)
    sources, packages, helpers = dict(code.files), set(code.imported_packages), {}
    for name, path in module_paths.items():
        own, used_mlpipe = user_module_files(path)
        helpers.update({f"{name}:{file}": digest for file, digest in own.files.items()})
        sources.update(used_mlpipe.files)
        packages |= own.imported_packages | used_mlpipe.imported_packages
    input_ids = {k: [a.id for a in v] for k, v in sorted(cls.inputs_for_cache(inputs).items())}
    external = dict(sorted(cls.external_inputs(node.parameters).items()))
    payload: dict[str, Any] = {
        "component": cls.__qualname__,  # not the module: a file run as a script or imported is the same code
        "fingerprint": component_fingerprint(cls),
        "mlpipe": mlpipe.__version__ if sources else None,
        "sources": sources,
        "libraries": library_versions(packages),
        "parameters": node.parameters,
        "module_files": module_files,
        "helpers": helpers,
        "inputs": input_ids,
        "outputs": node.outputs,
        **({"external": external} if external else {}),  # absent: keys of other nodes stay as they were
    }
    parts = {
        "key_format": KEY_FORMAT,
        "code": _hashed([payload["component"], payload["fingerprint"]]),
        **({"mlpipe": payload["mlpipe"]} if sources else {}),
        **{f"source:{file}": f"sha256:{digest[:16]}" for file, digest in sources.items()},
        **{f"library:{dist}": version for dist, version in payload["libraries"].items()},
        **{f"parameter:{name}": _shown_or_hashed(value) for name, value in node.parameters.items()},
        **{f"module_file:{name}": f"sha256:{digest[:16]}" for name, digest in module_files.items()},
        **{f"helper:{name}": f"sha256:{digest[:16]}" for name, digest in helpers.items()},
        **{f"input:{key}": ",".join(str(i) for i in ids) for key, ids in input_ids.items()},
        "outputs": _hashed(node.outputs),
        **{f"external:{name}": value for name, value in external.items()},
    }
    return CacheKey(_sha256(_canonical_json(payload)), parts, pinned_parts())


PIN_VARIABLE = "MLPIPE_CACHE_PIN"
_PIN_GROUPS = {  # pin name -> the part kinds it leaves out of the comparison
    "mlpipe": ("mlpipe", "source"),
    "libraries": ("library",),
    "helpers": ("helper",),
}


def pinned_parts() -> frozenset[str]:
    """The names in ``$MLPIPE_CACHE_PIN`` (comma-separated): ``mlpipe`` (its version and source
    files), ``libraries`` (every library version), ``helpers`` (user helper modules) or a
    distribution of :data:`LIBRARIES` (its version only). Set it for a run when you know an upgrade
    or edit leaves outputs unchanged; an execution recorded before it is then reused."""
    raw = os.environ.get(PIN_VARIABLE, "")
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(names - set(_PIN_GROUPS) - set(LIBRARIES.values()))
    if unknown:
        raise DefinitionError(
            f"{PIN_VARIABLE}={raw!r}: unknown name(s) {unknown}; pin any of {sorted(_PIN_GROUPS)} "
            f"or a library: {sorted(LIBRARIES.values())}"
        )
    return names


def _is_pinned(part: str, pinned: frozenset[str]) -> bool:
    kind, _, rest = part.partition(":")
    if kind == "library" and rest in pinned:
        return True
    return any(kind in _PIN_GROUPS[name] for name in pinned if name in _PIN_GROUPS)


def _compared(parts: Mapping[str, str], pinned: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in parts.items() if k != "key_format" and not _is_pinned(k, pinned)}


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()


def _hashed(value: Any) -> str:
    return f"sha256:{_sha256(_canonical_json(value))[:16]}"


_SHOWN_VALUE_CHARS = 60


def _shown_or_hashed(value: Any) -> str:
    text = _canonical_json(value).decode()
    return text if len(text) <= _SHOWN_VALUE_CHARS else _hashed(value)


_PART_ORDER = (
    "code",
    "mlpipe",
    "source",
    "library",
    "parameter",
    "module_file",
    "helper",
    "input",
    "external",
    "outputs",
)
_NEW_IN_FORMAT_2 = ("mlpipe", "source", "library", "helper")
_SHOWN_SOURCES = 3  # an upgrade changes many files: name a few and count the rest


def explain_cache_miss(
    previous: Mapping[str, str], current: Mapping[str, str], pinned: frozenset[str] = frozenset()
) -> str:
    """What differs between an earlier execution's key parts and this one's, in words; "" if
    nothing. Pinned parts are left out; an execution recorded before ``key_format`` existed is
    compared on the parts it has, and the message says it is older."""

    def rank(name: str) -> tuple[int, str]:
        kind = name.partition(":")[0]
        return (_PART_ORDER.index(kind) if kind in _PART_ORDER else len(_PART_ORDER), name)

    reasons = []
    older = "key_format" not in previous and "key_format" in current
    if older:
        reasons.append(
            "older execution without mlpipe's version, source files, library versions and helper modules in its key"
        )
        current = {k: v for k, v in current.items() if k.partition(":")[0] not in _NEW_IN_FORMAT_2}
    previous, current = _compared(previous, pinned), _compared(current, pinned)
    changed = sorted((n for n in set(previous) | set(current) if previous.get(n) != current.get(n)), key=rank)
    sources = [n for n in changed if n.startswith("source:")]
    for name in changed:
        old, new = previous.get(name), current.get(name)
        kind, _, key = name.partition(":")
        if kind == "code":
            reasons.append("the component's code or VERSION changed")
        elif kind == "mlpipe":
            reasons.append(_changed_between("mlpipe", old, new))
        elif kind == "source":
            shown = sources.index(name)
            if shown < _SHOWN_SOURCES:
                reasons.append(_source_change(key, old, new))
            elif shown == _SHOWN_SOURCES:
                reasons.append(f"and {len(sources) - shown} more mlpipe files")
        elif kind == "library":
            reasons.append(_changed_between(key, old, new))
        elif kind == "helper":
            reasons.append(_source_change(f"helper module {key.partition(':')[2]}", old, new))
        elif kind == "outputs":
            reasons.append("the node's declared outputs changed")
        elif kind == "parameter":
            reasons.append(_parameter_change(key, old, new))
        elif kind == "module_file":
            reasons.append(f"the module file of '{key}' changed")
        elif kind == "input":
            reasons.append(f"input '{key}': {_artifacts(new)} (was {_artifacts(old)})")
        elif kind == "external":
            reasons.append(f"external input {key}: {new} (was {old})")
        else:  # a part a newer mlpipe records
            reasons.append(f"'{name}' changed")
    return "; ".join(dict.fromkeys(reasons))  # one helper may be imported by two module files


def _changed_between(what: str, old: str | None, new: str | None) -> str:
    """``tensorflow-transform 1.16.0 → 1.17.0``; a library newly used or no longer used."""
    if old is None:
        return f"now uses {what} {new}"
    if new is None:
        return f"no longer uses {what} (was {old})"
    return f"{what} {old} → {new}"


def _source_change(file: str, old: str | None, new: str | None) -> str:
    if old is None:
        return f"{file} is now imported"
    if new is None:
        return f"{file} is no longer imported"
    return f"{file} changed"


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
    key: CacheKey,
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
                [a for a in artifacts if a.state == LIVE and not (is_remote(a.uri) or os.path.exists(a.uri))],
                "DELETED",
            )
    return None


def _completed_with_key(executions: list[Any], key: CacheKey) -> list[Any]:
    """The COMPLETE executions with this cache key, or with the same parts but pinned ones: the
    ones whose outputs a new execution may reuse."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    return [e for e in executions if e.last_known_state == pb.Execution.COMPLETE and _stands_in(e, key)]


def _stands_in(execution: Any, key: CacheKey) -> bool:
    if execution_property(execution, CACHE_KEY) == key.digest:
        return True
    recorded = execution_property(execution, CACHE_KEY_PARTS) if key.pinned else None
    return recorded is not None and _compared(json.loads(recorded), key.pinned) == _compared(
        key.parts, key.pinned
    )


def cache_miss_reason(executions: list[Any], key: CacheKey) -> str:
    """Why none of a node's earlier ``executions`` can stand in: an execution with this very key
    lost its outputs, or what changed since the newest successful one (for a pinned reuse, since
    the execution that made the outputs it reused: the reuse recorded the parts of its own run,
    and comparing with those would hide what the pin had left out)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    same_key = _completed_with_key(executions, key)
    if same_key:
        lost = max(same_key, key=lambda e: e.id)
        return f"the outputs of execution {lost.id}, which had the same cache key, are gone from disk"
    succeeded = [e for e in executions if e.last_known_state in (pb.Execution.COMPLETE, pb.Execution.CACHED)]
    if not succeeded:
        return FIRST_EXECUTION
    newest = max(succeeded, key=lambda e: e.id)
    maker = next((e for e in executions if e.id == execution_property(newest, CACHED_FROM)), None)
    if maker is not None and execution_property(maker, CACHE_KEY) != execution_property(newest, CACHE_KEY):
        newest = maker  # a reuse only a pin allowed
    recorded = execution_property(newest, CACHE_KEY_PARTS)
    if recorded is None:
        return f"execution {newest.id} (an older mlpipe) did not record its cache key's parts: cannot say what changed"
    changes = explain_cache_miss(json.loads(recorded), key.parts, key.pinned)
    return f"since execution {newest.id}: {changes or 'its cache key changed'}"
