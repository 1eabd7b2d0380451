"""Leases and single flight, with real processes: identical runs started together execute each node
once, a node killed on another host is taken over once its lease runs out, and a reused pid does
not keep a dead execution alive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe.metadata.convert import set_value
from mlpipe.metadata.queries import list_runs, run_executions
from mlpipe.metadata.store import HOST, LEASE_UNTIL, PID, MetadataStore
from mlpipe.orchestration.leases import owner_gone
from tests.orchestration.test_processes import MLPIPE, PIPELINE_FILE, _env, _wait_for

NODES = ["ingest", "scale", "apply_module", "summarize"]


@pytest.mark.e2e
def test_four_identical_concurrent_runs_execute_each_node_once(tmp_path, metadata_config):
    module = tmp_path / "user_module.py"
    # slower than the 1 s lease: the waiting runs must see the heartbeat, not take the node over
    module.write_text("import time\ndef transform(v):\n    time.sleep(0.8)\n    return v + 1\n")
    env = _env(tmp_path, metadata_config, module, MLPIPE_LEASE_SECONDS="1")
    procs = [
        subprocess.Popen(
            [*MLPIPE, "run", PIPELINE_FILE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()

    calls = (tmp_path / "calls.log").read_text().split()
    assert sorted(calls) == sorted(NODES)  # every node executed once in all
    store = MetadataStore(metadata_config)
    runs = list_runs(store)
    assert len(runs) == 4
    executed = {}
    for run in runs:
        states = {e.node_id: e for e in run_executions(store, run.run_id)}
        assert sorted(states) == sorted(NODES)
        for node, e in states.items():
            assert e.state in ("COMPLETE", "CACHED")
            if e.state == "COMPLETE":
                assert node not in executed
                executed[node] = e.id
    assert sorted(executed) == sorted(NODES)
    for run in runs:  # every other run reused exactly those executions' outputs
        for e in run_executions(store, run.run_id):
            assert e.cached_from in (None, executed[e.node_id])
    totals = {
        e.outputs["total"][0].uri
        for r in runs
        for e in run_executions(store, r.run_id)
        if "total" in e.outputs
    }
    assert len(totals) == 1


@pytest.mark.e2e
def test_node_killed_on_another_host_is_taken_over_after_its_lease(tmp_path, metadata_config):
    module = tmp_path / "user_module.py"
    marker, block = tmp_path / "started", tmp_path / "block"
    block.touch()
    module.write_text(  # the same code on both hosts; it blocks only while the block file exists
        f"import os, time\ndef transform(v):\n    open({str(marker)!r}, 'w').close()\n"
        f"    while os.path.exists({str(block)!r}):\n        time.sleep(0.1)\n    return v + 1\n"
    )
    env = _env(tmp_path, metadata_config, module, MLPIPE_LEASE_SECONDS="2")
    # "another host": its own UTS namespace with another host name, so this host cannot see its pid
    other_host = subprocess.Popen(
        [
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname other-host && exec "$@"',
            "sh",
            *MLPIPE,
            "run",
            PIPELINE_FILE,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for(marker, other_host)
    os.kill(other_host.pid, signal.SIGKILL)
    other_host.wait()
    store = MetadataStore(metadata_config)
    [killed] = [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.RUNNING]
    assert killed.custom_properties[HOST].string_value == "other-host"
    store.close()

    block.unlink()
    started = time.monotonic()
    rerun = subprocess.run(
        [*MLPIPE, "run", PIPELINE_FILE], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "apply_module: COMPLETE" in rerun.stderr
    store = MetadataStore(metadata_config)
    [taken_over] = store.db.mlmd.get_executions_by_id([killed.id])
    assert taken_over.last_known_state == pb.Execution.FAILED
    error = taken_over.custom_properties["__error__"].string_value
    assert "its owner (pid" in error and "on other-host) stopped renewing its lease" in error
    assert not [e for e in store.db.mlmd.get_executions() if e.last_known_state == pb.Execution.RUNNING]
    assert not [a for a in store.db.mlmd.get_artifacts() if a.state == pb.Artifact.PENDING]
    assert not (tmp_path / "root" / "apply_module" / ".staging").exists()
    assert time.monotonic() - started < 60


def test_a_live_process_on_the_same_host_does_not_keep_an_expired_lease_alive():
    execution = pb.Execution(last_known_state=pb.Execution.RUNNING)
    set_value(execution.custom_properties[HOST], socket.gethostname())
    set_value(execution.custom_properties[PID], os.getppid())  # alive: as a pid reused by another process
    set_value(execution.custom_properties[LEASE_UNTIL], time.time() + 30)
    assert owner_gone(execution) is None
    set_value(execution.custom_properties[LEASE_UNTIL], time.time() - 1)
    assert "stopped renewing its lease" in owner_gone(execution)
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    set_value(execution.custom_properties[PID], dead_pid.pid)
    set_value(execution.custom_properties[LEASE_UNTIL], time.time() + 30)
    assert (
        owner_gone(execution) == f"the process running it (pid {dead_pid.pid} on {socket.gethostname()}) died"
    )
