"""The parts of a cache key, read without importing: which files and libraries they cover, and
the WHY line that names a changed one."""

from __future__ import annotations

import ast
import glob
import os

import pytest

from mlpipe.dsl.component import Component
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.dsl.spec import ComponentSpec
from mlpipe.orchestration import code_digest
from mlpipe.orchestration.cache import cache_key, explain_cache_miss
from mlpipe.orchestration.code_digest import MLPIPE_DIR, mlpipe_closure, user_module_files
from mlpipe.types import Examples

STANDARD = sorted(
    f"mlpipe.components.{os.path.basename(p)[:-3]}"
    for p in glob.glob(os.path.join(MLPIPE_DIR, "components", "*.py"))
    if not p.endswith("__init__.py")
)


def _module_name(path: str) -> str:
    name = os.path.relpath(path, os.path.dirname(MLPIPE_DIR))[: -len(".py")].replace(os.sep, ".")
    return name.removesuffix(".__init__")


def _ast_imports(path: str, package: str) -> set[str]:
    """The oracle: what Python's own parser says ``path`` imports (as code_digest names them)."""
    found: set[str] = set()
    stack: list[ast.AST] = [ast.parse(open(path, "rb").read())]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
        stack.extend(ast.iter_child_nodes(node))
    return found


def test_imports_found_include_every_import_ast_finds_in_mlpipe():
    for path in glob.glob(os.path.join(MLPIPE_DIR, "**", "*.py"), recursive=True):
        name = _module_name(path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        found = set(code_digest._scan(path, package).imports)
        assert _ast_imports(path, package) <= found, path


def test_closures_of_standard_components_equal_the_ones_ast_gives():
    parent = os.path.dirname(MLPIPE_DIR)

    def ast_closure(module: str) -> set[str]:
        files, pending, seen = set(), [module], set()
        while pending:
            name = pending.pop()
            base = os.path.join(parent, *name.split("."))
            path = next(
                (p for p in (base + ".py", os.path.join(base, "__init__.py")) if os.path.isfile(p)), None
            )
            if name in seen or not name.startswith("mlpipe") or path is None:
                continue
            seen.add(name)
            files.add(os.path.relpath(path, parent))
            package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
            pending.extend(_ast_imports(path, package))
        return files

    for module in STANDARD:
        assert set(mlpipe_closure(module).files) == ast_closure(module), module
    transform = mlpipe_closure("mlpipe.components.transform").files
    assert {"mlpipe/components/tft_analysis.py", "mlpipe/io/examples.py"} <= set(transform)
    assert "mlpipe/components/pusher.py" not in transform
    assert "mlpipe/components/trainer.py" not in transform


def test_library_versions_follow_imports_and_what_libraries_run_on():
    import importlib.metadata

    transform = mlpipe_closure("mlpipe.components.transform").imported_packages
    versions = code_digest.library_versions(transform)
    # tf-keras: Transform loads the preprocessing module through module_loader, which binds KerasTuner
    # to tf.keras (library_patches) for module files that import it
    assert versions == {
        dist: importlib.metadata.version(dist)
        for dist in ("apache-beam", "pyarrow", "tensorflow", "tensorflow-transform", "tf-keras", "tfx-bsl")
    }
    assert code_digest.library_versions(mlpipe_closure("mlpipe.components.pusher").imported_packages) == {}


def test_user_module_covers_the_folder_files_it_imports(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for init in ("pkg/__init__.py", "pkg/sub/__init__.py"):
        (tmp_path / init).write_text("")
    (tmp_path / "pkg" / "train.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import tensorflow_transform as tft\n"
        "from . import (  # the features\n    features,  # and more\n)\n"
        "from .sub.deep import f\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import typing_only\n"
        "def run_fn(args):\n"
        "    from mlpipe.io import examples\n"
    )
    (tmp_path / "pkg" / "features.py").write_text("from pkg.sub import shared\n")
    (tmp_path / "pkg" / "sub" / "deep.py").write_text("")
    (tmp_path / "pkg" / "sub" / "shared.py").write_text("")
    (tmp_path / "pkg" / "typing_only.py").write_text("")
    (tmp_path / "pkg" / "unrelated.py").write_text("")
    helpers, mlpipe_code = user_module_files(str(tmp_path / "pkg" / "train.py"))
    assert sorted(helpers.files) == [
        "pkg/__init__.py",
        "pkg/features.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep.py",
        "pkg/sub/shared.py",
    ]
    assert "tensorflow_transform" in helpers.imported_packages
    # ``from mlpipe.io import examples`` runs the package and the module
    assert mlpipe_code.files == {
        **mlpipe_closure("mlpipe.io").files,
        **mlpipe_closure("mlpipe.io.examples").files,
    }


def test_user_module_importing_by_a_computed_name_covers_every_py_of_its_folder(tmp_path):
    (tmp_path / "module.py").write_text("import importlib\nhelper = importlib.import_module(NAME)\n")
    (tmp_path / "a.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("")
    helpers, _ = user_module_files(str(tmp_path / "module.py"))
    assert sorted(helpers.files) == ["a.py"]  # TFX's rule: the folder's .py files, not subfolders


def test_why_names_versions_files_libraries_and_helpers():
    previous = {
        "key_format": "2", "code": "sha256:c", "mlpipe": "0.1.0",
        "source:mlpipe/components/transform.py": "sha256:1", "source:mlpipe/components/tft_analysis.py": "sha256:2",
        "source:mlpipe/io/old.py": "sha256:3",
        "library:tensorflow-transform": "1.16.0", "library:apache-beam": "2.72.0",
        "module_file:module_file": "sha256:m", "helper:module_file:features.py": "sha256:f",
        "helper:module_file:gone.py": "sha256:g",
    }  # fmt: skip
    current = {
        **previous, "mlpipe": "0.2.0", "source:mlpipe/components/tft_analysis.py": "sha256:9",
        "source:mlpipe/io/new.py": "sha256:4", "library:tensorflow-transform": "1.17.0", "library:tf-keras": "2.16.0",
        "helper:module_file:features.py": "sha256:F", "helper:module_file:more.py": "sha256:n",
    }  # fmt: skip
    del (
        current["source:mlpipe/io/old.py"],
        current["library:apache-beam"],
        current["helper:module_file:gone.py"],
    )
    assert explain_cache_miss(previous, current).split("; ") == [
        "mlpipe 0.1.0 → 0.2.0",
        "mlpipe/components/tft_analysis.py changed",
        "mlpipe/io/new.py is now imported",
        "mlpipe/io/old.py is no longer imported",
        "no longer uses apache-beam (was 2.72.0)",
        "tensorflow-transform 1.16.0 → 1.17.0",
        "now uses tf-keras 2.16.0",
        "helper module features.py changed",
        "helper module gone.py is no longer imported",
        "helper module more.py is now imported",
    ]
    # pinned parts are not reasons
    assert explain_cache_miss(previous, current, frozenset({"mlpipe", "libraries"})).split("; ") == [
        "helper module features.py changed",
        "helper module gone.py is no longer imported",
        "helper module more.py is now imported",
    ]
    assert explain_cache_miss(previous, current, frozenset({"tensorflow-transform", "helpers"})).split("; ")[
        -2:
    ] == [
        "no longer uses apache-beam (was 2.72.0)",
        "now uses tf-keras 2.16.0",
    ]


def test_why_names_a_few_changed_mlpipe_files_and_counts_the_rest():
    previous = {"key_format": "2", **{f"source:mlpipe/m{i}.py": "sha256:a" for i in range(6)}}
    current = {"key_format": "2", **{f"source:mlpipe/m{i}.py": "sha256:b" for i in range(6)}}
    assert explain_cache_miss(previous, current) == (
        "mlpipe/m0.py changed; mlpipe/m1.py changed; mlpipe/m2.py changed; and 3 more mlpipe files"
    )


@pytest.mark.parametrize("pinned", [frozenset(), frozenset({"mlpipe"})])
def test_an_execution_recorded_before_these_parts_existed_is_read(pinned):
    # the parts mlpipe recorded before key_format: no mlpipe, source, library or helper parts
    older = {"code": "sha256:c", "parameter:factor": "2.0", "module_file:module_file": "sha256:m", "input:rows": "4",
             "outputs": "sha256:o"}  # fmt: skip
    current = {**older, "key_format": "2", "mlpipe": "0.1.0", "source:mlpipe/io/examples.py": "sha256:1",
               "library:tfx-bsl": "1.16.1", "helper:module_file:features.py": "sha256:f", "parameter:factor": "3.0"}  # fmt: skip
    assert explain_cache_miss(older, current, pinned).split("; ") == [
        "older execution without mlpipe's version, source files, library versions and helper modules in its key",
        "parameter 'factor' changed: 2.0 -> 3.0",
    ]


class _Reader(Component):
    """Reads ``$READER_SPAN`` from outside the pipeline, as an ExampleGen reads its input files."""

    SPEC = ComponentSpec(outputs={"out": Examples})

    @staticmethod
    def execute(ctx):
        raise NotImplementedError

    @classmethod
    def external_inputs(cls, parameters):
        return {"span": os.environ["READER_SPAN"]}


def test_external_inputs_are_parts_of_the_key_and_named_by_the_why(monkeypatch, tmp_path):
    node = Pipeline("reader", str(tmp_path), [_Reader()]).compile().node("_Reader")
    monkeypatch.setenv("READER_SPAN", "1")
    first = cache_key(_Reader, node, {})
    assert first.parts["external:span"] == "1"
    assert cache_key(_Reader, node, {}).digest == first.digest
    monkeypatch.setenv("READER_SPAN", "2")
    second = cache_key(_Reader, node, {})
    assert second.digest != first.digest
    assert explain_cache_miss(first.parts, second.parts) == "external input span: 2 (was 1)"
    # a component without external inputs has no such part (its key is what it was before they existed)
    plain = Pipeline("plain", str(tmp_path), [_Plain()]).compile().node("_Plain")
    assert not [p for p in cache_key(_Plain, plain, {}).parts if p.startswith("external")]


class _Plain(Component):
    SPEC = ComponentSpec(outputs={"out": Examples})

    @staticmethod
    def execute(ctx):
        raise NotImplementedError
