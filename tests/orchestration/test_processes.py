"""Real processes: `mlpipe run` killed with SIGKILL mid-executor, and 4 concurrent runs on one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe.metadata.config import MetadataConfig
from mlpipe.metadata.queries import artifacts, list_runs
from mlpipe.metadata.store import MetadataStore

PIPELINE_FILE = str(Path(__file__).with_name("four_nodes.py"))
MLPIPE = [sys.executable, "-m", "mlpipe.cli"]


def _uri(config: MetadataConfig) -> str:
    if config.kind == "sqlite":
        return config.path
    return f"mysql://{config.user}:{config.password}@{config.host}:{config.port}/{config.database}"


def _env(tmp_path: Path, config: MetadataConfig, module: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FOUR_NODES_ROOT=str(tmp_path / "root"),
        FOUR_NODES_MODULE=str(module),
        MLPIPE_METADATA=_uri(config),
        MLPIPE_TEST_CALLS_LOG=str(tmp_path / "calls.log"),
        **extra,
    )
    return env


def _wait_for(path: Path, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


@pytest.mark.e2e
def test_kill_9_mid_executor_then_rerun_completes(tmp_path, metadata_config):
    module = tmp_path / "user_module.py"
    marker = tmp_path / "started"
    module.write_text(
        f"import os, time\ndef transform(v):\n    open({str(marker)!r}, 'w').close()\n    time.sleep(120)\n"
    )
    env = _env(tmp_path, metadata_config, module)
    proc = subprocess.Popen(
        [*MLPIPE, "run", PIPELINE_FILE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    store = MetadataStore(metadata_config)  # opens fine after the kill
    running = [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.RUNNING]
    assert len(running) == 1
    pending = [a for a in store.db.mlmd.get_artifacts() if a.state == pb.Artifact.PENDING]
    assert len(pending) == 1 and pending[0].uri == ""  # its URI is recorded when published
    assert all("apply_module" not in a.uri for a in artifacts(store))  # queries never return it
    assert (tmp_path / "root" / "apply_module" / ".staging").exists()
    store.close()

    module.write_text("def transform(v):\n    return v + 1\n")
    rerun = subprocess.run(
        [*MLPIPE, "run", PIPELINE_FILE], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "apply_module: COMPLETE" in rerun.stderr and "ingest: CACHED" in rerun.stderr

    store = MetadataStore(metadata_config)
    (killed,) = store.db.mlmd.get_executions_by_id([running[0].id])
    assert killed.last_known_state == pb.Execution.FAILED
    assert "died" in killed.custom_properties["__error__"].string_value
    (abandoned,) = store.db.mlmd.get_artifacts_by_id([pending[0].id])
    assert abandoned.state == pb.Artifact.ABANDONED
    assert not os.path.exists(abandoned.uri)
    assert not (tmp_path / "root" / "apply_module" / ".staging").exists()
    assert not [a for a in store.db.mlmd.get_artifacts() if a.state == pb.Artifact.PENDING]


@pytest.mark.e2e
def test_four_concurrent_processes_share_one_store(tmp_path, metadata_config):
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    procs = [
        subprocess.Popen(
            [*MLPIPE, "run", PIPELINE_FILE],
            env=_env(tmp_path, metadata_config, module, FOUR_NODES_NAME=f"concurrent_{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err

    store = MetadataStore(metadata_config)
    mlmd = store.db.mlmd
    assert sorted(c.name for c in mlmd.get_contexts_by_type("pipeline")) == [
        f"concurrent_{i}" for i in range(4)
    ]
    assert len(mlmd.get_contexts_by_type("pipeline_run")) == 4
    assert len(mlmd.get_contexts_by_type("node")) == 16
    executions = mlmd.get_executions()
    assert len(executions) == 16 and all(e.last_known_state == pb.Execution.COMPLETE for e in executions)
    live = artifacts(store)
    assert len(live) == 16 and len({a.uri for a in live}) == 16
    totals = [a for a in live if a.type_name == "Float"]
    assert [open(os.path.join(a.uri, "value")).read() for a in totals] == ["25.0"] * 4
    assert all(sum(r.states.values()) == 4 for r in list_runs(store))
    assert (tmp_path / "calls.log").read_text().split().count("summarize") == 4
