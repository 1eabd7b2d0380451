"""Launcher + LocalDagRunner behaviour on SQLite and MariaDB: records, caching, failures."""

from __future__ import annotations

import gc
import os
import uuid

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe.errors import ComponentError
from mlpipe.metadata.queries import artifacts, list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "user_module.py"
    path.write_text("def transform(v):\n    return v + 1\n")
    return path


def _run(tmp_path, module_file, metadata_config, **kw):
    pipeline = four_nodes.create_pipeline(
        str(tmp_path / "root"), str(module_file), metadata_config, factor=kw.pop("factor", 2.0)
    )
    return LocalDagRunner(progress=False).run(pipeline, **kw)


def _states(result) -> dict[str, str]:
    return {n: result.state_of(n) for n in NODES}


def test_first_run_records_contexts_executions_events_and_layout(
    tmp_path, module_file, metadata_config, calls
):
    result = _run(tmp_path, module_file, metadata_config)
    assert _states(result) == dict.fromkeys(NODES, "COMPLETE")
    assert calls() == NODES

    store = MetadataStore(metadata_config)
    mlmd = store.db.mlmd
    assert [c.name for c in mlmd.get_contexts_by_type("pipeline")] == ["four_nodes"]
    assert [c.name for c in mlmd.get_contexts_by_type("pipeline_run")] == [result.run_id]
    assert sorted(c.name for c in mlmd.get_contexts_by_type("node")) == sorted(
        f"four_nodes.{n}" for n in NODES
    )
    executions = mlmd.get_executions()
    assert len(executions) == 4 and all(e.last_known_state == pb.Execution.COMPLETE for e in executions)

    events = mlmd.get_events_by_execution_ids([e.id for e in executions])
    assert sum(e.type == pb.Event.OUTPUT for e in events) == 4
    assert sum(e.type == pb.Event.INPUT for e in events) == 3  # ingest has no input
    # every output sits at <root>/<node>/<key>/<execution_id>
    for node, key in [
        ("ingest", "rows"),
        ("scale", "scaled"),
        ("apply_module", "transformed"),
        ("summarize", "total"),
    ]:
        (artifact,) = result.results[node].outputs[key]
        execution_id = result.results[node].execution_id
        assert artifact.uri == str(tmp_path / "root" / node / key / str(execution_id))
        assert os.path.isdir(artifact.uri)
    # values flowed through: (0..4)*2 + 1 summed = 25
    (total,) = result.results["summarize"].outputs["total"]
    assert total.read() == 25.0
    # properties reach MLMD
    (rows,) = [
        a
        for a in artifacts(store, "Examples")
        if a.uri.endswith(f"rows/{result.results['ingest'].execution_id}")
    ]
    assert rows.split_names == ["train"] and rows.get_custom_property("num_rows") == 5
    assert not (tmp_path / "root" / "ingest" / ".staging").exists()


def test_caching_module_edit_parameter_change_and_deleted_output(
    tmp_path, module_file, metadata_config, calls
):
    first = _run(tmp_path, module_file, metadata_config)
    calls()
    assert {n: first.results[n].cache_miss for n in NODES} == dict.fromkeys(
        NODES, "no earlier successful execution of this node"
    )

    second = _run(tmp_path, module_file, metadata_config)
    assert _states(second) == dict.fromkeys(NODES, "CACHED")
    assert calls() == []
    assert all(second.results[n].cache_miss is None for n in NODES)
    store = MetadataStore(metadata_config)
    assert {e.node_id: e.why for e in run_executions(store, second.run_id)} == {
        n: f"reuses execution {first.results[n].execution_id}" for n in NODES
    }
    assert (
        second.results["summarize"].outputs["total"][0].id
        == first.results["summarize"].outputs["total"][0].id
    )

    module_file.write_text("def transform(v):\n    return v + 2\n")
    third = _run(tmp_path, module_file, metadata_config)
    assert _states(third) == {
        "ingest": "CACHED",
        "scale": "CACHED",
        "apply_module": "COMPLETE",
        "summarize": "COMPLETE",
    }
    assert calls() == ["apply_module", "summarize"]
    assert third.results["summarize"].outputs["total"][0].read() == 30.0
    # each executed node says what changed since its newest successful execution (here: cached)
    transformed = third.results["apply_module"].outputs["transformed"][0].id
    assert third.results["apply_module"].cache_miss == (
        f"since execution {second.results['apply_module'].execution_id}: the module file of 'module_file' changed"
    )
    assert third.results["summarize"].cache_miss == (
        f"since execution {second.results['summarize'].execution_id}: input 'examples': artifact {transformed} "
        f"(was artifact {first.results['apply_module'].outputs['transformed'][0].id})"
    )

    fourth = _run(tmp_path, module_file, metadata_config, factor=3.0)
    assert _states(fourth) == {
        "ingest": "CACHED",
        "scale": "COMPLETE",
        "apply_module": "COMPLETE",
        "summarize": "COMPLETE",
    }
    assert calls() == ["scale", "apply_module", "summarize"]
    assert fourth.results["scale"].cache_miss == (
        f"since execution {third.results['scale'].execution_id}: parameter 'factor' changed: 2.0 -> 3.0"
    )
    assert {e.node_id: e.why for e in run_executions(store, fourth.run_id)}["scale"] == (
        fourth.results["scale"].cache_miss
    )

    (rows,) = fourth.results["ingest"].outputs["rows"]
    import shutil

    shutil.rmtree(rows.uri)
    fifth = _run(tmp_path, module_file, metadata_config, factor=3.0)
    assert fifth.state_of("ingest") == "COMPLETE"
    assert fifth.results["ingest"].cache_miss == (
        f"the outputs of execution {first.results['ingest'].execution_id}, which had the same cache key, are gone from disk"
    )
    assert calls()[0] == "ingest"
    store = MetadataStore(metadata_config)
    assert rows.id not in {a.id for a in artifacts(store)}  # the deleted artifact is no longer offered
    (deleted,) = store.db.mlmd.get_artifacts_by_id([rows.id])
    assert deleted.state == pb.Artifact.DELETED


def test_cache_disabled_executes_everything(tmp_path, module_file, metadata_config, calls):
    _run(tmp_path, module_file, metadata_config)
    calls()
    result = _run(tmp_path, module_file, metadata_config, enable_cache=False)
    assert _states(result) == dict.fromkeys(NODES, "COMPLETE")
    assert calls() == NODES
    assert {result.results[n].cache_miss for n in NODES} == {"caching is off"}


def test_failure_records_failed_leaves_nothing_and_rerun_executes_only_failed_part(
    tmp_path, module_file, metadata_config, calls
):
    module_file.write_text(
        "import gc\n"
        "def transform(v):\n"
        "    gc.collect()\n"
        "    assert gc.get_freeze_count() > 0, 'survivors of a full collection are frozen during a run'\n"
        "    raise ValueError('bad value %s' % v)\n"
    )
    with pytest.raises(RunError) as info:
        _run(tmp_path, module_file, metadata_config)
    assert gc.get_freeze_count() == 0  # the run's heap scope (orchestration/heap.py) ended with it
    result = info.value.result
    assert calls() == ["ingest", "scale", "apply_module"]
    assert list(result.results) == ["ingest", "scale"]
    assert result.not_run == ["summarize"]
    error = result.failed["apply_module"]
    assert isinstance(error, ComponentError)
    assert "node 'apply_module' failed: ValueError: bad value 0.0" in str(error)
    assert error.log_path and os.path.isfile(error.log_path)
    log_text = open(error.log_path).read()
    assert "Traceback" in log_text and "bad value 0.0" in log_text and "applying" in log_text
    assert str(info.value) == (
        f"run {result.run_id} of pipeline 'four_nodes' failed:\n"
        f"  node 'apply_module' failed: ValueError: bad value 0.0 (log: {error.log_path})\n"
        "  not run: summarize\n"
        "  succeeded: ingest, scale (their results are cached)\n"
        "  fix the cause, then rerun: the same command (completed nodes come from the cache)"
    )

    store = MetadataStore(metadata_config)
    (failed,) = [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.FAILED]
    assert "bad value" in failed.custom_properties["__error__"].string_value
    out_events = [
        e for e in store.db.mlmd.get_events_by_execution_ids([failed.id]) if e.type == pb.Event.OUTPUT
    ]
    (abandoned,) = store.db.mlmd.get_artifacts_by_id([e.artifact_id for e in out_events])
    assert abandoned.state == pb.Artifact.ABANDONED
    assert not os.path.exists(abandoned.uri)
    assert os.listdir(tmp_path / "root" / "apply_module") == [".system"]
    assert [a.id for a in artifacts(store) if "apply_module" in a.uri] == []  # not even the abandoned one

    module_file.write_text("def transform(v):\n    return v + 1\n")
    rerun = _run(tmp_path, module_file, metadata_config)
    assert _states(rerun) == {
        "ingest": "CACHED",
        "scale": "CACHED",
        "apply_module": "COMPLETE",
        "summarize": "COMPLETE",
    }
    assert calls() == ["apply_module", "summarize"]


def test_partial_runs_from_and_only(tmp_path, module_file, metadata_config, calls):
    _run(tmp_path, module_file, metadata_config)
    calls()
    only = _run(tmp_path, module_file, metadata_config, only=["summarize"], enable_cache=False)
    assert list(only.results) == ["summarize"]
    assert calls() == ["summarize"]
    from_scale = _run(tmp_path, module_file, metadata_config, from_nodes=["apply_module"], enable_cache=False)
    assert list(from_scale.results) == ["apply_module", "summarize"]
    assert calls() == ["apply_module", "summarize"]
    assert from_scale.results["summarize"].outputs["total"][0].read() == 25.0

    store = MetadataStore(metadata_config)
    runs = list_runs(store, "four_nodes")
    assert len(runs) == 3
    executions = run_executions(store, from_scale.run_id)
    assert [e.node_id for e in executions] == ["apply_module", "summarize"]


def test_only_without_upstream_results_names_what_to_run(tmp_path, module_file, metadata_config):
    with pytest.raises(RunError) as info:
        _run(tmp_path, module_file, metadata_config, only=["summarize"])
    assert "needs outputs['transformed'] of node 'apply_module'" in str(info.value)
    assert "--from apply_module" in str(info.value)


def test_cache_miss_names_each_changed_part_of_the_key():
    from mlpipe.orchestration.cache import explain_cache_miss

    long_hash = "sha256:0123456789abcdef"
    previous = {"code": "sha256:a", "parameter:train_args": '{"num_steps": 1000}', "parameter:config": long_hash,
                "parameter:shuffle": "true", "parameter:name": '"5"', "parameter:gone": "3",
                "module_file:module_file": "sha256:m1", "input:examples": "4", "input:baseline": "2",
                "outputs": "sha256:o1", "future:part": "x"}  # fmt: skip
    current = {"code": "sha256:b", "parameter:train_args": '{"num_steps": 1}', "parameter:config": "sha256:ff",
               "parameter:shuffle": "false", "parameter:name": "5", "parameter:added": "null",
               "module_file:module_file": "sha256:m2", "input:examples": "5,6", "input:baseline": "",
               "outputs": "sha256:o2", "future:part": "y"}  # fmt: skip
    assert explain_cache_miss(previous, current).split("; ") == [
        "the component's code or VERSION changed",
        "parameter 'added' was added: null",
        "parameter 'config' changed",  # too long to show: only its hash is kept
        "parameter 'gone' was removed (was 3)",
        "parameter 'name' changed: \"5\" -> 5",  # a string and a number differ visibly
        "parameter 'shuffle' changed: true -> false",
        'parameter \'train_args\' changed: {"num_steps": 1000} -> {"num_steps": 1}',
        "the module file of 'module_file' changed",
        "input 'baseline': none (was artifact 2)",
        "input 'examples': artifacts 5,6 (was artifact 4)",
        "the node's declared outputs changed",
        "'future:part' changed",  # recorded by a newer mlpipe: named, not a crash
    ]
    assert explain_cache_miss(current, current) == ""


def test_fingerprint_covers_base_classes_and_version(tmp_path, monkeypatch):
    import importlib.util
    import sys

    from mlpipe.orchestration.cache import component_fingerprint

    def load(name: str, base_return: str, version: str = "1"):
        path = tmp_path / f"{name}.py"
        path.write_text(
            "from mlpipe.dsl import Component\n"
            "class Base(Component):\n"
            "    @staticmethod\n"
            "    def execute(ctx):\n"
            f"        return {base_return!r}\n"
            "class Leaf(Base):\n"
            f"    VERSION = {version!r}\n"
        )
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)  # as mlpipe's loaders do: inspect needs it
        spec.loader.exec_module(module)
        return module.Leaf

    original = component_fingerprint(load("v1", "a"))
    assert component_fingerprint(load("v1_again", "a")) == original
    assert component_fingerprint(load("base_edited", "b")) != original  # only the base class changed
    assert component_fingerprint(load("bumped", "a", version="2")) != original


def test_fingerprints_read_source_one_thread_at_a_time(monkeypatch):
    """Node threads fingerprint at once; CPython 3.11's ``ast`` (behind getsource) is not thread-safe."""
    import inspect
    import threading
    import time

    from mlpipe.dsl import Component
    from mlpipe.orchestration import cache

    inside = 0
    most_inside = 0
    count_lock = threading.Lock()
    real_getsource = inspect.getsource

    def slow_getsource(target):
        nonlocal inside, most_inside
        with count_lock:
            inside += 1
            most_inside = max(most_inside, inside)
        time.sleep(0.02)  # long enough for the other threads to arrive
        with count_lock:
            inside -= 1
        return real_getsource(target)

    monkeypatch.setattr(cache.inspect, "getsource", slow_getsource)
    classes = [type(f"Fresh{i}", (Component,), {"execute": staticmethod(lambda ctx: None)}) for i in range(6)]
    fingerprints: dict[str, str] = {}
    threads = [
        threading.Thread(
            target=lambda c=c: fingerprints.setdefault(c.__name__, cache.component_fingerprint(c))
        )
        for c in classes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_inside == 1
    assert len(fingerprints) == 6


def test_function_path_parameters_hash_their_module(tmp_path, monkeypatch):
    from mlpipe import Component, ComponentSpec
    from mlpipe.dsl import FunctionPath, ParameterSpec
    from mlpipe.ir import NodeIR
    from mlpipe.orchestration.cache import module_file_hashes

    class UsesFunction(Component):
        SPEC = ComponentSpec(parameters={"run_fn": ParameterSpec(FunctionPath)})

    # a fresh package name: a second run in the same process (mutmut's) must not find the first's
    name = f"userpkg_{uuid.uuid4().hex}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("def run_fn(args):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    node = NodeIR("n", "x:UsesFunction", None, {"run_fn": f"{name}.train.run_fn"}, {}, {}, ())
    before = module_file_hashes(UsesFunction, node)
    (package / "train.py").write_text("def run_fn(args):\n    return 2\n")
    assert module_file_hashes(UsesFunction, node) != before
    assert UsesFunction(run_fn=f"{name}.train.run_fn").parameters["run_fn"] == f"{name}.train.run_fn"
