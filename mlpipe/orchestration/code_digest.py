"""What code and which libraries a node's outputs depend on, read from source files without
importing anything (importing TensorFlow to compute a cache key would cost seconds).

A standard component's code is the *import closure* of its module inside mlpipe: the module and
every mlpipe module it imports, transitively, at module level or inside functions (imports under
``if TYPE_CHECKING:`` run never and do not count), each hashed by its source. We chose the closure
over "mlpipe's version plus a hand-kept per-component digest" because nothing has to be kept by
hand: a fix to ``components/tft_analysis.py`` re-runs Transform in a development checkout where
the version did not move, and leaves StatisticsGen, which does not import it, cached. The cache
key adds mlpipe's version too (see :mod:`mlpipe.orchestration.cache`), for the code a closure does
not see: modules reached by a computed name and the launcher that records the outputs.

A user's module file covers the files it imports from its own folder (or, for a module inside a
package, from its top-level package), transitively: a helper ``features.py`` beside ``taxi_utils.py``
is in; the pipeline definition in the same folder, which the module does not import, is not, so
editing it does not re-train. A module that imports by a computed name
(``importlib.import_module(name)``) gets TFX's rule instead: every ``.py`` file of its folder.

The third-party packages the code imports map to the distributions whose versions enter the key
(:data:`LIBRARIES`, plus the ones those run on, :data:`RUNS_ON`), read from their installed
metadata (``importlib.metadata``), which imports none of them.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

import mlpipe

MLPIPE_DIR = os.path.dirname(os.path.abspath(mlpipe.__file__))
_MLPIPE_PARENT = os.path.dirname(MLPIPE_DIR)

# Import name -> distribution, for the libraries whose version decides what an executor writes.
LIBRARIES = {
    "tensorflow": "tensorflow",
    "tensorflow_transform": "tensorflow-transform",
    "tensorflow_data_validation": "tensorflow-data-validation",
    "tensorflow_model_analysis": "tensorflow-model-analysis",
    "apache_beam": "apache-beam",
    "tfx_bsl": "tfx-bsl",
    "tf_keras": "tf-keras",
    "ml_metadata": "ml-metadata",
    "pyarrow": "pyarrow",
}
# A library's results also depend on the libraries it computes with, which its user need not import.
_TFX_LIBRARY_BASE = ("tensorflow", "tfx-bsl", "apache-beam", "pyarrow")
RUNS_ON = {
    "tensorflow-transform": _TFX_LIBRARY_BASE,
    "tensorflow-data-validation": _TFX_LIBRARY_BASE,
    "tensorflow-model-analysis": _TFX_LIBRARY_BASE,
    "tfx-bsl": ("tensorflow", "apache-beam", "pyarrow"),
    "tf-keras": ("tensorflow",),
}
NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class CodeFiles:
    """Source files by a name to show (``mlpipe/io/examples.py``, ``features.py``) with their
    SHA-256, and the top-level names of the other packages they import."""

    files: dict[str, str]
    imported_packages: frozenset[str]


@dataclass(frozen=True)
class _Scanned:
    digest: str
    imports: tuple[str, ...]  # absolute module names, and ``module.name`` for ``from module import name``
    computed_import: bool  # imports a module by a name computed at run time


def mlpipe_closure(module: str) -> CodeFiles:
    """The mlpipe modules that ``module`` (an mlpipe module name) imports, transitively, itself
    included. Computed once per process: the code a process runs does not change under it."""
    return _mlpipe_closure(module)


@functools.cache
def _mlpipe_closure(module: str) -> CodeFiles:
    files: dict[str, str] = {}
    packages: set[str] = set()
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        found = _mlpipe_module(name)
        if found is not None:
            files[found.file] = found.digest
            packages |= found.packages
            pending.extend(found.modules)
    return CodeFiles(files, frozenset(packages))


@dataclass(frozen=True)
class _MlpipeModule:
    file: str  # as shown: mlpipe/io/examples.py
    digest: str
    modules: tuple[str, ...]  # the mlpipe names it imports (some are members, not modules)
    packages: frozenset[str]  # the top-level names of the other packages it imports


@functools.cache
def _mlpipe_module(name: str) -> _MlpipeModule | None:
    """An mlpipe module's file and imports, read once per process; None if ``name`` is no module."""
    path = _module_path(_MLPIPE_PARENT, name) if name.partition(".")[0] == "mlpipe" else None
    if path is None:
        return None
    scanned = _scan(path, _package_of(name, path))
    tops = [imported.partition(".")[0] for imported in scanned.imports]
    modules = [imported for imported, top in zip(scanned.imports, tops, strict=True) if top == "mlpipe"]
    packages = frozenset(top for top in tops if top != "mlpipe")
    return _MlpipeModule(os.path.relpath(path, _MLPIPE_PARENT), scanned.digest, tuple(modules), packages)


def user_module_files(path: str) -> tuple[CodeFiles, CodeFiles]:
    """For a user's module file: the helper files of its folder it imports (not itself), and the
    mlpipe code it imports (:func:`mlpipe_closure` of each mlpipe module it names).

    Not memoized across calls beyond unchanged files: a notebook user edits helpers between runs.
    """
    path = os.path.abspath(path)
    root = os.path.dirname(path)
    while os.path.isfile(os.path.join(root, "__init__.py")):
        root = os.path.dirname(root)
    own = os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, ".")
    if own.endswith(".__init__"):
        own = own[: -len(".__init__")]
    scope = os.path.join(root, own.split(".")[0]) if "." in own else os.path.dirname(path)
    helpers: dict[str, str] = {}
    packages: set[str] = set()
    mlpipe_files: dict[str, str] = {}
    seen = {path}
    module = _scan_file(path, _package_of(own, path))
    pending, computed = list(module.imports), module.computed_import
    while pending:
        name = pending.pop()
        top = name.partition(".")[0]
        if top == "mlpipe":
            closure = mlpipe_closure(name)
            mlpipe_files.update(closure.files)
            packages |= closure.imported_packages
            continue
        found = _module_path(root, name)
        if found is None:
            packages.add(top)
            continue
        if not found.startswith(scope + os.sep) or found in seen:  # outside the folder, or done
            continue
        seen.add(found)
        scanned = _scan_file(found, _package_of(name, found))
        helpers[os.path.relpath(found, root)] = scanned.digest
        computed = computed or scanned.computed_import
        pending.extend(scanned.imports)
    if computed:  # a helper picked at run time: fall back to TFX's rule, every .py of the folder
        for other in sorted(glob.glob(os.path.join(os.path.dirname(path), "*.py"))):
            if other != path:
                helpers.setdefault(os.path.relpath(other, root), _scan_file(other, "").digest)
    return CodeFiles(helpers, frozenset(packages)), CodeFiles(mlpipe_files, frozenset())


def library_versions(imported_packages: Iterable[str]) -> dict[str, str]:
    """Installed version of each library in :data:`LIBRARIES` that the code imports, and of the
    libraries those run on; ``not installed`` for one that is missing."""
    wanted: set[str] = set()
    for package in imported_packages:
        dist = LIBRARIES.get(package)
        if dist is not None:
            wanted.add(dist)
            wanted.update(RUNS_ON.get(dist, ()))
    return {dist: _version(dist) for dist in sorted(wanted)}


@functools.cache
def _version(dist: str) -> str:
    import importlib.metadata  # ~20 ms (email, zipfile, csv): only when a key needs a version

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return NOT_INSTALLED


def _module_path(root: str, name: str) -> str | None:
    """The file of module ``name`` under ``root`` (a sys.path-like folder), or None."""
    if not name or name.startswith("."):
        return None
    base = os.path.join(root, *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _package_of(name: str, path: str) -> str:
    """The package relative imports in module ``name`` (file ``path``) start from."""
    return name if os.path.basename(path) == "__init__.py" else name.rpartition(".")[0]


def _scan_file(path: str, package: str) -> _Scanned:
    """:func:`_scan`, re-read whenever the file's size or modification time changes."""
    stat = os.stat(path)
    return _scan_version(path, package, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _scan_version(path: str, package: str, mtime_ns: int, size: int) -> _Scanned:
    return _scan(path, package)


# Import statements, ``if TYPE_CHECKING:`` lines and calls that import by name, found with
# regular expressions: ``ast.parse`` of the taxi pipeline's ~35 modules costs ~70 ms, more than all
# the other cache work of a cached run (these take ~4 ms), and import statements have a regular
# form. A line inside a string that looks like an import counts too, which can only add a file or a
# library to a key, never miss one; a test checks the imports found against ``ast``'s on every
# mlpipe module.
_STATEMENT = re.compile(
    r"^(?P<indent>[ \t]*)(?:"
    r"from[ \t]+(?P<base>\.*[\w.]*)[ \t]+import[ \t]*(?P<names>\([^)]*\)|[^\n;#]*)"
    r"|import[ \t]+(?P<modules>[^\n;#]*)"
    r"|(?P<type_checking>if[ \t]+(?:typing\.)?TYPE_CHECKING[ \t]*:))",
    re.M,
)
_IMPORT_CALLS = ("import_module", "__import__")
_IMPORT_CALL = re.compile(r"\b(?:import_module|__import__)[ \t]*\([ \t]*(?P<arg>[^,)\n]*)")
_CONTINUATION = re.compile(r"\\\r?\n")
_COMMENT = re.compile(r"#[^\n]*")
_STRING = re.compile(r"""^[rRbBuU]?(['"])([\w.]+)\1$""")


def _scan(path: str, package: str) -> _Scanned:
    with open(path, "rb") as f:
        source = f.read()
    text = _CONTINUATION.sub(" ", source.decode("utf-8", "replace"))
    imports: list[str] = []
    computed = False
    skip_until = -1
    for match in _STATEMENT.finditer(text):
        if match.start() < skip_until:
            continue
        if match["type_checking"]:
            skip_until = _block_end(text, match.end(), match["indent"])
        elif match["modules"] is not None:
            imports.extend(_names(match["modules"]))
        else:
            base = _absolute(match["base"], package)
            if base:
                imports.append(base)
                imports.extend(f"{base}.{name}" for name in _names(match["names"]) if name != "*")
    if any(call in text for call in _IMPORT_CALLS):  # rare: skip the slower search elsewhere
        for match in _IMPORT_CALL.finditer(text):
            literal = _STRING.match(match["arg"].strip())
            if literal:
                imports.append(literal[2])
            else:
                computed = True
    return _Scanned(hashlib.sha256(source).hexdigest(), tuple(imports), computed)


def _block_end(text: str, start: int, indent: str) -> int:
    """Where the block opened at ``start`` by a line indented ``indent`` ends: the next line that
    is not blank, not a comment and not indented deeper."""
    end = re.compile(rf"^(?!{re.escape(indent)}[ \t])(?=[ \t]*[^\s#])", re.M).search(text, start)
    return end.start() if end else len(text)


def _names(listed: str) -> list[str]:
    """The module or member names of ``a as b, c`` or ``(a,\n b)``."""
    listed = _COMMENT.sub("", listed)
    return [item.split()[0] for item in listed.strip("() \t\n").split(",") if item.strip()]


def _absolute(written: str, package: str) -> str | None:
    """The absolute name of a ``from`` import's module (``..io`` from package ``mlpipe.components``)."""
    module = written.lstrip(".")
    level = len(written) - len(module)
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if base and module else base or module
