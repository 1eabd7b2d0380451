"""Local, Beam, Airflow and Kubeflow (``kfp.local``) run one pipeline to the same results.

Every runner schedules the same launcher, so the same pipeline must leave byte-identical artifacts
and the same ML Metadata records whichever runner ran it, and a node one runner executed is served
from the cache on every other runner sharing its root and store.

Airflow is the real thing (``airflow dags test`` in its own virtualenv, as in test_airflow.py) and
by far the slowest part, so each test starts its one ``dags test`` in the background first and runs
the in-process runners while Airflow starts up.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.metadata.queries import ExecutionInfo, list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.airflow import AirflowDagRunner
from mlpipe.orchestration.local import LocalDagRunner
from tests.conftest import IN_CI
from tests.orchestration import four_nodes
from tests.support.airflow_env import AirflowHome, migrated_airflow_home

NODES = ["ingest", "scale", "apply_module", "summarize"]
RUNNERS = ["local", "beam", "airflow", "kfp"]
MODULE = "def transform(v):\n    return v + 1\n"
# ingest writes 0..4, scale doubles them, the module adds 1, summarize adds them up
TRANSFORMED = [1.0, 3.0, 5.0, 7.0, 9.0]
TOTAL = "25.0"

# kfp.local warns when an image name lacks "python"; the subprocess runner ignores the image anyway
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning"),
]


def _require(module: str) -> ModuleType:
    """Import a runner's package; skip without it locally, but fail in CI, which must run everything."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        message = f"{module} is not importable ({e}): install requirements.lock (.ci/setup_venv.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _finish(process: subprocess.Popen, log: Path) -> str:
    """Wait for ``dags test``; return the mlpipe run id of its DAG run, asserting it succeeded."""
    try:
        process.wait(timeout=300)
    finally:
        _stop(process)
    output = log.read_text()
    assert process.returncode == 0 and "state=success" in output, output[-3000:]
    match = re.search(r"DagRun Finished: dag_id=([^,\s]+), .*?run_id=([^,\s]+)", output)
    assert match, output[-3000:]
    # as the DAG names its mlpipe run: Airflow's run ids repeat across DAGs sharing a store
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{match.group(1)}__{match.group(2)}")


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> AirflowHome:
    return migrated_airflow_home(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture
def kfp_local(tmp_path: Path, monkeypatch) -> ModuleType:
    """kfp.local with the subprocess runner: tasks are processes of this interpreter (and env)."""
    monkeypatch.delenv("MLPIPE_METADATA", raising=False)  # every run uses its pipeline's own store
    local = _require("kfp.local")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-local"))
    return local


def _run_beam(pipeline: Pipeline):
    _require("apache_beam")
    from mlpipe.orchestration.beam import BeamDagRunner

    return BeamDagRunner().run(pipeline)


def _run_kfp(pipeline: Pipeline) -> None:
    from mlpipe.orchestration.kubeflow import KubeflowDagRunner

    KubeflowDagRunner().build(pipeline)()  # raises if a task fails


def _executions_by_run(pipeline: Pipeline) -> dict[str, list[ExecutionInfo]]:
    store = MetadataStore(pipeline.metadata)
    try:
        return {r.run_id: run_executions(store, r.run_id) for r in list_runs(store, pipeline.name)}
    finally:
        store.close()


def _mlmd_counts(pipeline: Pipeline) -> dict[str, Counter]:
    """Artifacts per (type name, state) and events per type, over the whole store."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    store = MetadataStore(pipeline.metadata)
    try:
        mlmd = store.db.mlmd
        type_names = {t.id: t.name for t in store.db.call(mlmd.get_artifact_types)}
        artifacts = store.db.call(mlmd.get_artifacts)
        execution_ids = [e.id for e in store.db.call(mlmd.get_executions)]
        events = store.db.call(mlmd.get_events_by_execution_ids, execution_ids)
        contexts = store.db.call(mlmd.get_contexts)
        context_types = {t.id: t.name for t in store.db.call(mlmd.get_context_types)}
    finally:
        store.close()
    return {
        "artifacts": Counter(f"{type_names[a.type_id]} {pb.Artifact.State.Name(a.state)}" for a in artifacts),
        "events": Counter(pb.Event.Type.Name(e.type) for e in events),
        "contexts": Counter(context_types[c.type_id] for c in contexts),
    }


def _content_hashes(executions: list[ExecutionInfo]) -> dict[str, str]:
    """Per node, a hash of its output directories: output key, relative path and bytes of each file."""
    hashes = {}
    for execution in executions:
        digest = hashlib.sha256()
        for key, artifacts in sorted(execution.outputs.items()):
            for index, artifact in enumerate(artifacts):
                top = Path(artifact.uri)
                files = sorted(p for p in top.rglob("*") if p.is_file())
                assert files, f"{execution.node_id}: output {key} is empty ({top})"
                for path in files:
                    name = f"{key}/{index}/{path.relative_to(top).as_posix()}"
                    digest.update(f"{name}\0{path.stat().st_size}\0".encode())
                    digest.update(path.read_bytes())
        hashes[execution.node_id] = digest.hexdigest()
    return hashes


def _visible_node_entries(pipeline: Pipeline) -> dict[str, list[str]]:
    """What each node left in the pipeline root: its output keys, its logs, no staging leftovers."""
    root = Path(pipeline.root)
    return {node: sorted(p.name for p in (root / node).iterdir()) for node in NODES}


def _calls(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_local_beam_airflow_and_kfp_write_the_same_artifacts_and_metadata(
    airflow_home, kfp_local, tmp_path, monkeypatch
):
    module = tmp_path / "user_module.py"
    module.write_text(MODULE)
    # One pipeline, one root and metadata.sqlite (beside the root) per runner
    pipelines = {
        r: four_nodes.create_pipeline(str(tmp_path / r / "root"), str(module), name="runners_agree")
        for r in RUNNERS
    }
    calls = {r: tmp_path / r / "calls.log" for r in RUNNERS}

    dag_id = AirflowDagRunner().compile(pipelines["airflow"], airflow_home.dags / "runners_agree.py")
    airflow_log = tmp_path / "airflow.log"
    airflow = airflow_home.start_dags_test(
        dag_id, "2026-01-01", airflow_log, MLPIPE_TEST_CALLS_LOG=str(calls["airflow"])
    )
    try:
        monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls["local"]))
        local = LocalDagRunner(progress=False).run(pipelines["local"])
        monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls["beam"]))
        beam = _run_beam(pipelines["beam"])
        monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls["kfp"]))  # task processes inherit it
        _run_kfp(pipelines["kfp"])
    except BaseException:
        _stop(airflow)
        raise
    airflow_run = _finish(airflow, airflow_log)

    runs = {r: _executions_by_run(p) for r, p in pipelines.items()}
    assert {r: list(v) for r, v in runs.items()} == {
        "local": [local.run_id],
        "beam": [beam.run_id],
        "airflow": [airflow_run],
        "kfp": list(runs["kfp"]),  # kfp.local's run id is a random UUID
    }
    executions = {r: next(iter(v.values())) for r, v in runs.items()}

    # every runner executed each node exactly once, in the pipeline's order
    assert {r: _calls(c) for r, c in calls.items()} == dict.fromkeys(RUNNERS, NODES)
    assert {r: [(e.node_id, e.state) for e in v] for r, v in executions.items()} == dict.fromkeys(
        RUNNERS, [(n, "COMPLETE") for n in NODES]
    )
    # ... with the same component (execution type) on every runner
    type_names = {r: [e.type_name for e in v] for r, v in executions.items()}
    assert type_names == dict.fromkeys(RUNNERS, [f"{four_nodes.__name__}.{n}" for n in NODES])

    # (a) identical artifact contents, and the values the pipeline computes
    hashes = {r: _content_hashes(v) for r, v in executions.items()}
    assert set(hashes["local"]) == set(NODES)
    assert hashes == dict.fromkeys(RUNNERS, hashes["local"])
    assert len(set(hashes["local"].values())) == len(NODES)  # four different outputs, not four empties
    for r, v in executions.items():
        (transformed,) = v[2].outputs["transformed"]
        assert json.loads((Path(transformed.uri) / "values.json").read_text()) == TRANSFORMED, r
        (total,) = v[3].outputs["total"]
        assert (Path(total.uri) / "value").read_text() == TOTAL, r
    assert {r: _visible_node_entries(p) for r, p in pipelines.items()} == dict.fromkeys(
        RUNNERS,
        {
            "ingest": [".system", "rows"],
            "scale": [".system", "scaled"],
            "apply_module": [".system", "transformed"],
            "summarize": [".system", "total"],
        },
    )

    # (b) the same MLMD structure
    expected = {
        "artifacts": Counter({"Examples LIVE": 3, "Float LIVE": 1}),
        "events": Counter({"INPUT": 3, "OUTPUT": 4}),
        "contexts": Counter({"pipeline": 1, "pipeline_run": 1, "node": 4}),
    }
    assert {r: _mlmd_counts(p) for r, p in pipelines.items()} == dict.fromkeys(RUNNERS, expected)


def test_after_a_local_run_beam_airflow_and_kfp_serve_every_node_from_the_cache(
    airflow_home, kfp_local, tmp_path, monkeypatch
):
    module = tmp_path / "user_module.py"
    module.write_text(MODULE)
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module), name="runners_agree_cached")
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls))

    local = LocalDagRunner(progress=False).run(pipeline)
    assert {n: local.state_of(n) for n in NODES} == dict.fromkeys(NODES, "COMPLETE")
    outputs = {n: {k: [a.id for a in v] for k, v in local.results[n].outputs.items()} for n in NODES}
    assert calls.read_text().split() == NODES

    # Now the three others on the same root and store: Airflow in the background, while Beam and
    # kfp.local run here (concurrent writers on one SQLite file are part of the contract)
    dag_id = AirflowDagRunner().compile(pipeline, airflow_home.dags / "runners_agree_cached.py")
    airflow_log = tmp_path / "airflow.log"
    airflow = airflow_home.start_dags_test(
        dag_id, "2026-01-01", airflow_log, MLPIPE_TEST_CALLS_LOG=str(calls)
    )
    try:
        beam = _run_beam(pipeline)
        _run_kfp(pipeline)
    except BaseException:
        _stop(airflow)
        raise
    airflow_run = _finish(airflow, airflow_log)

    runs = _executions_by_run(pipeline)
    kfp_runs = set(runs) - {local.run_id, beam.run_id, airflow_run}
    assert len(runs) == 4 and len(kfp_runs) == 1, sorted(runs)
    later = {"beam": beam.run_id, "airflow": airflow_run, "kfp": kfp_runs.pop()}
    assert [(e.node_id, e.state) for e in runs[local.run_id]] == [(n, "COMPLETE") for n in NODES]
    assert {r: [(e.node_id, e.state) for e in runs[run_id]] for r, run_id in later.items()} == dict.fromkeys(
        later, [(n, "CACHED") for n in NODES]
    )
    # a cached execution stands for the local run's artifacts: the same ids, no new artifacts
    reused = {
        r: {e.node_id: {k: [a.id for a in v] for k, v in e.outputs.items()} for e in runs[run_id]}
        for r, run_id in later.items()
    }
    assert reused == dict.fromkeys(later, outputs)
    assert _mlmd_counts(pipeline) == {
        "artifacts": Counter({"Examples LIVE": 3, "Float LIVE": 1}),
        "events": Counter({"INPUT": 4 * 3, "OUTPUT": 4 * 4}),  # a CACHED execution records its events too
        "contexts": Counter({"pipeline": 1, "pipeline_run": 4, "node": 4}),
    }
    assert calls.read_text().split() == NODES  # no executor ran after the local run
