"""Approval: nothing is pushed until a person approves; reject, timeout and a killed wait that resumes.

Each test runs ``mlpipe run`` in a subprocess as a user would, answers with ``mlpipe approve`` from
another process, and checks the serving directory and ML Metadata, not the component's own word.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mlpipe
from mlpipe.metadata.config import sqlite
from mlpipe.metadata.queries import artifacts, run_executions
from mlpipe.metadata.store import MetadataStore

PIPELINE = Path(__file__).with_name("approval_pipeline.py")
MLPIPE = [sys.executable, "-m", "mlpipe.cli"]
WAITING = re.compile(
    r"approval: waiting for approval of model (\d+) by ana, bo: mlpipe approve (\S+) approval"
)


class Run:
    """``mlpipe run`` in the background, its stderr collected line by line."""

    def __init__(self, env: dict[str, str]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*MLPIPE, "run", str(PIPELINE)],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for_request(self, deadline_s: float = 60) -> str:
        """The run id the waiting line tells the user to answer."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := WAITING.search(line):
                    return match.group(2)
            if self.proc.poll() is not None:
                raise AssertionError(f"run ended before asking: {''.join(self.lines)}")
            time.sleep(0.05)
        raise AssertionError(f"no waiting line in {deadline_s}s: {''.join(self.lines)}")

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "APPROVAL_ROOT": str(tmp_path / "root"),
        "APPROVAL_SERVING_DIR": str(tmp_path / "serving"),
        "APPROVAL_CALLS_LOG": str(tmp_path / "calls.log"),
        "MLPIPE_METADATA": str(tmp_path / "metadata.sqlite"),
    }


def approve(env: dict[str, str], run_id: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MLPIPE, "approve", run_id, "approval", *flags], env=env, capture_output=True, text=True
    )


def pushed_versions(env: dict[str, str]) -> list[str]:
    serving = env["APPROVAL_SERVING_DIR"]
    return sorted(os.listdir(serving)) if os.path.isdir(serving) else []


def approval_blessing(env: dict[str, str]) -> dict:
    store = MetadataStore(sqlite(env["MLPIPE_METADATA"]))
    [blessing] = [a for a in artifacts(store, "ModelBlessing") if "approval" in a.custom_properties]
    marker = sorted(f for f in os.listdir(blessing.uri) if f.endswith("BLESSED"))
    return {**blessing.custom_properties, "marker": marker}


@pytest.mark.e2e
def test_nothing_is_pushed_until_approved_then_the_decision_is_recorded(env):
    run = Run(env)
    run_id = run.wait_for_request()
    time.sleep(0.5)  # the run keeps waiting: still nothing pushed
    assert pushed_versions(env) == []
    assert run.proc.poll() is None
    stranger = approve(env, run_id, "--user", "eve")
    assert stranger.returncode == 1
    assert (
        "'eve' may not answer approvals of node 'approval'; its approvers are ['ana', 'bo']"
        in stranger.stderr
    )
    answered = approve(env, run_id, "--user", "ana", "--comment", "AUC up 2 points")
    assert answered.returncode == 0, answered.stderr
    assert run.finish() == 0, "".join(run.lines)
    assert len(pushed_versions(env)) == 1
    decision = approval_blessing(env)
    assert decision["marker"] == ["BLESSED"]
    assert (decision["blessed"], decision["approval"], decision["approved_by"]) == (1, "approved", "ana")
    assert decision["comment"] == "AUC up 2 points"
    again = approve(env, run_id, "--reject", "--user", "bo")  # a decision is made once
    assert again.returncode == 1 and "already approved by ana" in again.stderr


@pytest.mark.e2e
def test_rejected_model_is_not_pushed(env):
    run = Run(env)
    run_id = run.wait_for_request()
    config = sqlite(env["MLPIPE_METADATA"])  # the notebook way: mlpipe.approve(pipeline.metadata, ...)
    decision = mlpipe.approve(
        config, run_id, "approval", reject=True, user="bo", comment="slice 'night' regressed"
    )
    assert decision.outcome == "rejected"
    assert run.finish() == 0, "".join(run.lines)
    assert pushed_versions(env) == []
    decision = approval_blessing(env)
    assert (decision["marker"], decision["approval"], decision["decided_by"]) == (
        ["NOT_BLESSED"],
        "rejected",
        "bo",
    )


@pytest.mark.e2e
def test_unanswered_request_times_out_as_a_rejection(env):
    run = Run({**env, "APPROVAL_TIMEOUT": "1.5"})
    started = time.monotonic()
    run.wait_for_request()
    assert run.finish() == 0, "".join(run.lines)
    assert time.monotonic() - started >= 1.5
    assert pushed_versions(env) == []
    decision = approval_blessing(env)
    assert (decision["marker"], decision["approval"]) == (["NOT_BLESSED"], "timed out")
    assert "approval: model 1 timed out\n" in run.lines
    assert not [line for line in run.lines if line.startswith("INFO")]  # executor INFO goes to the node log


@pytest.mark.e2e
def test_model_the_evaluator_did_not_bless_is_rejected_without_asking(env):
    run = Run({**env, "APPROVAL_EVALUATOR_BLESSES": "0"})
    assert run.finish() == 0, "".join(run.lines)
    assert not any(WAITING.search(line) for line in run.lines)
    assert pushed_versions(env) == []
    assert approval_blessing(env)["approval"] == "not blessed by the evaluation"


@pytest.mark.e2e
def test_run_killed_while_waiting_resumes_the_same_request_without_retraining(env, tmp_path):
    first = Run(env)
    first_run_id = first.wait_for_request()
    first.proc.send_signal(signal.SIGKILL)
    first.finish()
    request_file = next((tmp_path / "root" / "approval" / ".approvals").glob("model-*/request.json"))
    asked_at = json.loads(request_file.read_text())["created_at"]

    second = Run(env)
    assert second.wait_for_request() == first_run_id  # the same request, answered with the first run's id
    assert json.loads(request_file.read_text())["created_at"] == asked_at  # the timeout clock kept running
    assert approve(env, first_run_id, "--user", "ana").returncode == 0
    assert second.finish() == 0, "".join(second.lines)
    assert len(pushed_versions(env)) == 1
    assert Path(env["APPROVAL_CALLS_LOG"]).read_text() == "make_model\n"  # trained once
    store = MetadataStore(sqlite(env["MLPIPE_METADATA"]))
    states = {e.node_id: e.state for e in run_executions(store, first_run_id)}
    assert states["approval"] == "FAILED"  # the killed wait was cleaned up by the second launch
