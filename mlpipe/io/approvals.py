"""The files through which a person's approval reaches a waiting Approval node.

A request and its decision live in ``<root>/<node>/.approvals/model-<id>/``, keyed by the model and
not by the execution: a run stopped while it waits, and rerun, finds the same request (its timeout
clock keeps running from the first request) and any decision made in between. Files, not ML
Metadata, because executors never touch MLMD and because every runner's workers share the pipeline
root. Each file is written whole under a temporary name and renamed, so a reader never sees half a
decision, and a decision is written at most once.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mlpipe.errors import DataError
from mlpipe.io.uris import is_remote

REQUEST_FILE = "request.json"
DECISION_FILE = "decision.json"
APPROVED, REJECTED, TIMED_OUT, NOT_BLESSED = (
    "approved",
    "rejected",
    "timed out",
    "not blessed by the evaluation",
)


@dataclass(frozen=True)
class ApprovalRequest:
    """What is asked: which model, from which run, its evaluation summary, and who may answer."""

    model_id: int
    model_uri: str
    pipeline: str
    run_id: str
    node_id: str
    approvers: list[str]
    timeout_seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    @property
    def deadline(self) -> float:
        return self.created_at + self.timeout_seconds


@dataclass(frozen=True)
class ApprovalDecision:
    """The answer: ``outcome`` is one of approved / rejected / timed out; who, when and why."""

    outcome: str
    user: str
    comment: str = ""
    decided_at: float = field(default_factory=time.time)

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED


def mailbox(node_dir: str, model_id: int) -> str:
    if is_remote(node_dir):  # os.path on a URI would make a local folder named 's3:'
        raise DataError(
            f"{node_dir}: an Approval keeps its mailbox under its node's directory, which must be local; "
            f"a pipeline whose root is in a bucket cannot use the Approval component yet"
        )
    return os.path.join(node_dir, ".approvals", f"model-{model_id}")


def read_request(box: str) -> ApprovalRequest | None:
    data = _read(os.path.join(box, REQUEST_FILE))
    return ApprovalRequest(**data) if data is not None else None


def read_decision(box: str) -> ApprovalDecision | None:
    data = _read(os.path.join(box, DECISION_FILE))
    return ApprovalDecision(**data) if data is not None else None


def write_request(box: str, request: ApprovalRequest) -> ApprovalRequest:
    """Writes ``request`` unless one is already there; returns the one that stands (the first)."""
    os.makedirs(box, exist_ok=True)
    if not _write_once(os.path.join(box, REQUEST_FILE), asdict(request)):
        existing = read_request(box)
        assert existing is not None
        return existing
    return request


def write_decision(box: str, decision: ApprovalDecision) -> ApprovalDecision:
    """Writes ``decision`` unless one was made already; returns the one that stands (the first)."""
    if not _write_once(os.path.join(box, DECISION_FILE), asdict(decision)):
        existing = read_decision(box)
        assert existing is not None
        return existing
    return decision


def _write_once(path: str, data: dict[str, Any]) -> bool:
    """Atomically creates ``path`` with ``data``; False when it exists (the first writer wins)."""
    tmp = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    try:
        os.link(tmp, path)  # fails if path exists, unlike rename: two deciders cannot both win
    except FileExistsError:
        return False
    finally:
        os.remove(tmp)
    return True


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
