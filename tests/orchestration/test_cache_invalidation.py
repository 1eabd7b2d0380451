"""What re-executes a node, for real: an edited helper of a standard component (in a copy of the
mlpipe package), a helper module beside a user's module file, a changed library version (a
distribution's metadata on the path), each with the WHY line naming the change; what does not (an
unrelated edit, a pinned part)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys

import pytest

from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.code_digest import MLPIPE_DIR
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from tests.orchestration import four_nodes

# Runs a one-node pipeline (CsvExampleGen) with whatever mlpipe is first on the path; prints the
# planned and the run's state and WHY line (cache miss reason) as JSON.
DRIVER = """
import json, sys
from mlpipe import Pipeline
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.metadata.config import sqlite
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from mlpipe.orchestration.plan import plan_run

data, root = sys.argv[1], sys.argv[2]
pipeline = Pipeline("csv", root, [CsvExampleGen(input_base=data)], metadata=sqlite(root + "/metadata.sqlite"))
(planned,) = plan_run(pipeline)
result = LocalDagRunner(progress=False).run(pipeline).results["CsvExampleGen"]
import mlpipe
print(json.dumps({"plan": [planned.action, planned.why], "state": result.state, "why": result.cache_miss,
                  "mlpipe": mlpipe.__file__}))
"""


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path}: the test needs updating"
    path.write_text(text.replace(old, new))


@pytest.fixture
def mlpipe_copy(tmp_path):
    """A copy of the mlpipe package under test, to edit."""
    copy = tmp_path / "site"
    shutil.copytree(MLPIPE_DIR, copy / "mlpipe", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _fake_distribution(where, name: str, version: str) -> str:
    """A distribution's metadata, as an installer writes it, in a new folder to put first on the path."""
    folder = where / f"{name}-{version}"
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(folder)


@pytest.mark.e2e
def test_standard_component_reruns_for_its_code_and_libraries_only(tmp_path, mlpipe_copy):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(30)))
    root = tmp_path / "root"

    def run(*, path_first: str | None = None, pin: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "MLPIPE_CACHE_PIN"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (path_first, str(mlpipe_copy)) if p)
        if pin:
            env["MLPIPE_CACHE_PIN"] = pin
        out = subprocess.run(
            [sys.executable, "-c", DRIVER, str(data), str(root)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["mlpipe"] == str(mlpipe_copy / "mlpipe" / "__init__.py")
        if report["state"] == "COMPLETE":  # the dry run says what the run then did
            assert report["plan"] == ["execute", report["why"]]
        else:
            assert report["plan"][0] == "reuse"
        return report

    assert run()["state"] == "COMPLETE"

    # a module CsvExampleGen does not import: cached
    _edit(mlpipe_copy / "mlpipe/components/pusher.py", '"""Pusher:', '"""The Pusher:')
    assert run()["state"] == "CACHED"

    # a helper outside the class, in the component's own module: the class source is
    # unchanged (the old key missed this), the module is not
    _edit(
        mlpipe_copy / "mlpipe/components/example_gen.py",
        "def record_input(ctx: ExecutionContext, resolved: ResolvedInput) -> None:\n",
        "def record_input(ctx: ExecutionContext, resolved: ResolvedInput) -> None:\n    ctx = ctx\n",
    )
    report = run()
    assert report["state"] == "COMPLETE"
    assert report["why"].endswith(": mlpipe/components/example_gen.py changed")

    # a private helper in another module it imports, inside a function
    _edit(
        mlpipe_copy / "mlpipe/io/examples.py",
        "def _read_one_csv(path: str) -> pa.Table:\n",
        "def _read_one_csv(path: str) -> pa.Table:\n    path = str(path)\n",
    )
    report = run()
    assert report["state"] == "COMPLETE"
    assert report["why"].endswith(": mlpipe/io/examples.py changed")

    # pinned: a helper edit does not re-run
    _edit(mlpipe_copy / "mlpipe/io/examples.py", "    path = str(path)\n", "    path = os.fspath(path)\n")
    assert run(pin="mlpipe")["state"] == "CACHED"

    # a library the component's code imports (tfx-bsl, for feature-based splits), upgraded
    installed = importlib.metadata.version("tfx-bsl")
    upgraded = _fake_distribution(tmp_path, "tfx-bsl", "1.99.0")
    report = run(path_first=upgraded)
    assert report["state"] == "COMPLETE"
    assert report["why"].split(": ", 1)[1].split("; ") == [
        "mlpipe/io/examples.py changed",  # the pinned edit: unpinned, the execution it reused differs
        f"tfx-bsl {installed} → 1.99.0",
    ]

    # the user knows the next upgrade changes nothing here: pinned, the cache holds
    assert (
        run(path_first=_fake_distribution(tmp_path, "tfx-bsl", "1.99.1"), pin="tfx-bsl")["state"] == "CACHED"
    )
    # a library the component does not use (TFMA) changes nothing
    tfma = _fake_distribution(tmp_path, "tensorflow-model-analysis", "9.0")
    assert run(path_first=os.pathsep.join([upgraded, tfma]))["state"] == "CACHED"


def test_user_module_reruns_for_a_helper_it_imports_not_for_other_files(
    tmp_path, metadata_config, calls, monkeypatch
):
    folder = tmp_path / "user"
    folder.mkdir()
    module_file = folder / "user_module.py"
    module_file.write_text("from features import shift\n\n\ndef transform(v):\n    return shift(v)\n")
    (folder / "features.py").write_text("def shift(v):\n    return v + 1\n")
    (folder / "pipeline_definition.py").write_text("FACTOR = 2.0\n")  # beside it, not imported
    monkeypatch.syspath_prepend(str(folder))

    def run() -> dict:
        monkeypatch.delitem(
            sys.modules, "features", raising=False
        )  # the module loader reloads only the module file
        pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module_file), metadata_config)
        return LocalDagRunner(progress=False).run(pipeline).results

    first = run()
    assert first["summarize"].outputs["total"][0].read() == 25.0  # (0..4)*2 + 1, summed
    calls()

    (folder / "pipeline_definition.py").write_text("FACTOR = 3.0\n")
    assert run()["apply_module"].state == "CACHED"
    assert calls() == []

    (folder / "features.py").write_text("def shift(v):\n    return v + 2\n")
    results = run()
    assert results["apply_module"].state == "COMPLETE"
    assert results["apply_module"].cache_miss.endswith(": helper module features.py changed")
    assert results["summarize"].outputs["total"][0].read() == 30.0
    assert calls() == ["apply_module", "summarize"]


def test_a_misspelt_pin_fails_the_node_naming_it(tmp_path, monkeypatch):
    module_file = tmp_path / "user_module.py"
    module_file.write_text("def transform(v):\n    return v\n")
    monkeypatch.setenv("MLPIPE_CACHE_PIN", "mlpipe,tensorflow-transfrom")
    pipeline = four_nodes.create_pipeline(
        str(tmp_path / "root"), str(module_file), sqlite(tmp_path / "m.sqlite")
    )
    with pytest.raises(RunError) as info:
        LocalDagRunner(progress=False).run(pipeline)
    assert "node 'ingest' failed: DefinitionError: MLPIPE_CACHE_PIN='mlpipe,tensorflow-transfrom': " in str(
        info.value
    )
    assert "unknown name(s) ['tensorflow-transfrom']" in str(info.value)


def test_executions_recorded_before_the_new_parts_are_explained_and_can_be_pinned(
    tmp_path, monkeypatch, calls
):
    """An older mlpipe recorded other digests and parts without ``key_format`` (and without the
    mlpipe, source, library and helper parts): rewrite a real run's records so, as an upgrade finds them."""
    import json as json_module

    from mlpipe.metadata.store import CACHE_KEY, CACHE_KEY_PARTS, MetadataStore

    module_file = tmp_path / "user_module.py"
    module_file.write_text("def transform(v):\n    return v + 1\n")
    config = sqlite(tmp_path / "metadata.sqlite")

    def run(factor: float = 2.0):
        pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module_file), config, factor=factor)
        return LocalDagRunner(progress=False).run(pipeline).results

    first = run()
    store = MetadataStore(config)
    executions = store.db.mlmd.get_executions()
    for execution in executions:
        parts = json_module.loads(execution.custom_properties[CACHE_KEY_PARTS].string_value)
        del parts["key_format"]
        execution.custom_properties[CACHE_KEY_PARTS].string_value = json_module.dumps(parts)
        execution.custom_properties[CACHE_KEY].string_value = "digest-of-an-older-mlpipe"
    store.db.mlmd.put_executions(executions)
    store.close()
    calls()

    monkeypatch.setenv("MLPIPE_CACHE_PIN", "mlpipe")  # pinned: the older executions stand in
    assert {r.state for r in run().values()} == {"CACHED"}
    assert calls() == []

    monkeypatch.delenv("MLPIPE_CACHE_PIN")
    results = run(factor=3.0)
    older = "older execution without mlpipe's version, source files, library versions and helper modules in its key"
    # compared with the execution that made the outputs, not with the pinned CACHED one
    assert results["ingest"].cache_miss == f"since execution {first['ingest'].execution_id}: {older}"
    assert results["scale"].cache_miss.startswith(
        f"since execution {first['scale'].execution_id}: {older}; parameter 'factor' changed: 2.0 -> 3.0; "
    )
    assert calls() == ["ingest", "scale", "apply_module", "summarize"]
