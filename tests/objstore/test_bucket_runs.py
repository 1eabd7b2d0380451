"""Pipelines whose root and serving directory are in a real S3 server (moto, on 127.0.0.1), run by
``mlpipe run`` processes sharing one MariaDB store: nothing LIVE is ever partial, a killed writer's
prefix goes, concurrent runs lose nothing, and identical runs do the work once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe.metadata.config import mysql
from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from tests.objstore import oracle
from tests.objstore.bucket_pipeline import expected_model_files
from tests.support.object_stores import SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(Path(__file__).with_name("bucket_pipeline.py"))
MLPIPE = [sys.executable, "-m", "mlpipe.cli", "run", PIPELINE]
NODES = ["rows", "train", "Pusher"]
CALLED = ["rows", "train"]  # the nodes that log their calls (the Pusher is mlpipe's own)


@pytest.fixture
def mariadb_config(mariadb_server):
    database = mariadb_server.create_database(f"mlmd_{uuid.uuid4().hex[:10]}")
    config = mysql(
        mariadb_server.host, database, mariadb_server.user, mariadb_server.password, mariadb_server.port
    )
    MetadataStore(config).close()  # the schema first: concurrent first opens race on creating it
    return config


def _env(tmp_path: Path, bucket: str, config, **extra: str) -> dict[str, str]:
    uri = f"mysql://{config.user}:{config.password}@{config.host}:{config.port}/{config.database}"
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BUCKET_ROOT": f"{bucket}/root",
        "BUCKET_SERVING": f"{bucket}/serving/model",
        "MLPIPE_METADATA": uri,
        "MLPIPE_TEST_CALLS_LOG": str(tmp_path / "calls.log"),
        **extra,
    }


def _run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """One ``mlpipe run`` in its own empty working directory, ``tmp_path/work``."""
    cwd = tmp_path / "work"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(MLPIPE, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def _assert_live_artifacts_whole(store: MetadataStore, files: int) -> int:
    """Every LIVE artifact's prefix holds exactly the objects its producer wrote; returns how many."""
    live = oracle.live_artifacts(store)
    for type_name, artifact in live:
        assert artifact.uri.startswith("s3://"), artifact.uri
        expected = oracle.expected_artifact(type_name, oracle.rows_of(store, artifact), files)
        stored = oracle.objects(artifact.uri)
        assert stored == expected, f"{type_name} {artifact.uri}: {sorted(stored)} != {sorted(expected)}"
    return len(live)


def _versions(bucket: str) -> dict[int, dict[str, bytes]]:
    """Pushed version -> its objects (the claim marker aside)."""
    stored = oracle.objects(f"{bucket}/serving/model")
    versions: dict[int, dict[str, bytes]] = {}
    for key, data in stored.items():
        version, _, rest = key.partition("/")
        if rest != ".mlpipe-claim":
            versions.setdefault(int(version), {})[rest] = data
    return versions


def _served_model(n: int, files: int) -> dict[str, bytes]:
    return {k.removeprefix("Format-Serving/"): v for k, v in expected_model_files(n, files).items()}


@pytest.mark.e2e
def test_one_run_writes_only_to_the_bucket_and_a_rerun_is_cached(tmp_path, bucket, mariadb_config):
    env = _env(tmp_path, bucket, mariadb_config, MLPIPE_LEASE_SECONDS="5")
    first = _run(env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert not os.listdir(tmp_path / "work")  # no local 's3:' look-alike
    store = MetadataStore(mariadb_config)
    assert _assert_live_artifacts_whole(store, files=3) == 3
    [run] = list_runs(store)
    executions = {e.node_id: e for e in run_executions(store, run.run_id)}
    for node in NODES:
        assert executions[node].state == "COMPLETE"
        [artifact] = next(iter(executions[node].outputs.values()))
        assert artifact.uri == f"{bucket}/root/{node}/{artifact.uri.split('/')[-2]}/{executions[node].id}"
        log = oracle.objects(f"{bucket}/root/{node}/.system/{executions[node].id}")["executor.log"]
        assert executions[node].log_path == f"{bucket}/root/{node}/.system/{executions[node].id}/executor.log"
        assert SECRET_KEY.encode() not in log
    assert _versions(bucket) == {
        int(
            executions["Pusher"].outputs["pushed_model"][0].get_custom_property("pushed_version")
        ): _served_model(4, 3)
    }
    assert SECRET_KEY not in first.stderr + first.stdout

    second = _run(env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "calls.log").read_text().split() == CALLED  # nothing executed again
    assert "3 cached" in second.stderr


@pytest.mark.e2e
def test_kill_9_while_uploading_then_rerun(tmp_path, bucket, mariadb_config):
    files = 300  # ~4 s of uploads to moto: the kill lands mid-upload
    env = _env(tmp_path, bucket, mariadb_config, BUCKET_MODEL_FILES=str(files), MLPIPE_LEASE_SECONDS="2")
    victim = subprocess.Popen(MLPIPE, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not oracle.keys(f"{bucket}/root/train/model"):
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "train never started uploading"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    store = MetadataStore(mariadb_config)
    [killed] = [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.RUNNING]
    partial = oracle.keys(f"{bucket}/root/train/model/{killed.id}")
    assert 0 < len(partial) < files + 1  # caught mid-upload: some objects, not all
    assert _assert_live_artifacts_whole(store, files) == 1  # only rows' output is LIVE
    assert not _versions(bucket)
    scratch = tmp_path / "objstore-cache" / "scratch"
    assert list(scratch.glob(f"train-{killed.id}-*"))  # its local staging, on this "host"
    store.close()

    rerun = _run(env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    store = MetadataStore(mariadb_config)
    [taken_over] = store.db.mlmd.get_executions_by_id([killed.id])
    assert taken_over.last_known_state == pb.Execution.FAILED
    assert not oracle.keys(f"{bucket}/root/train/model/{killed.id}")  # the dead writer's prefix is gone
    assert not list(scratch.glob(f"train-{killed.id}-*"))
    [train] = [
        e
        for r in list_runs(store)
        for e in run_executions(store, r.run_id)
        if e.node_id == "train" and e.state == "COMPLETE"
    ]
    assert oracle.keys(f"{bucket}/root/train/model") == {
        f"{train.id}/{k}" for k in expected_model_files(4, files)
    }
    assert not [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.RUNNING]
    assert _assert_live_artifacts_whole(store, files) == 3
    assert list(_versions(bucket).values()) == [_served_model(4, files)]
    assert (tmp_path / "calls.log").read_text().split() == ["rows", "train", "train"]


@pytest.mark.e2e
def test_four_different_concurrent_runs_on_one_store_and_bucket_lose_nothing(
    tmp_path, bucket, mariadb_config
):
    procs = [
        subprocess.Popen(
            MLPIPE,
            env=_env(tmp_path, bucket, mariadb_config, BUCKET_ROWS=str(n), MLPIPE_LEASE_SECONDS="5"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (2, 3, 4, 5)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store = MetadataStore(mariadb_config)
    runs = list_runs(store)
    assert len(runs) == 4
    for run in runs:
        assert sorted((e.node_id, e.state) for e in run_executions(store, run.run_id)) == sorted(
            (node, "COMPLETE") for node in NODES
        )
    assert _assert_live_artifacts_whole(store, files=3) == 12
    assert sorted(_versions(bucket).values(), key=lambda v: v["saved_model.pb"]) == sorted(
        (_served_model(n, 3) for n in (2, 3, 4, 5)), key=lambda v: v["saved_model.pb"]
    )


@pytest.mark.e2e
def test_four_identical_concurrent_runs_execute_each_node_once_and_push_one_version(
    tmp_path, bucket, mariadb_config
):
    env = _env(tmp_path, bucket, mariadb_config, MLPIPE_LEASE_SECONDS="5", BUCKET_MODEL_FILES="60")
    procs = [
        subprocess.Popen(
            MLPIPE, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        errs.append(err)
    assert sorted((tmp_path / "calls.log").read_text().split()) == sorted(CALLED), "\n".join(errs)
    store = MetadataStore(mariadb_config)
    assert len(list_runs(store)) == 4
    assert _assert_live_artifacts_whole(store, files=60) == 3
    for node, key in (("rows", "examples"), ("train", "model"), ("Pusher", "pushed_model")):
        assert len(oracle.children(f"{bucket}/root/{node}/{key}")) == 1  # one execution wrote files
    assert list(_versions(bucket).values()) == [_served_model(4, 60)]
