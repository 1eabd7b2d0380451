"""Answering an Approval node: find the request a run is waiting on and record a person's decision.

The node waits on files under the pipeline root (:mod:`mlpipe.io.approvals`); this module finds
them from what a person knows — the run id and the node id, as the waiting line prints them — by
way of ML Metadata, which records every execution's node directory and input model.
"""

from __future__ import annotations

import getpass
import glob
import os
import time
from dataclasses import dataclass
from typing import Any

from mlpipe.errors import MlpipeError
from mlpipe.io.approvals import (
    APPROVED,
    REJECTED,
    ApprovalDecision,
    ApprovalRequest,
    mailbox,
    read_decision,
    read_request,
    write_decision,
)
from mlpipe.metadata.config import MetadataConfig
from mlpipe.metadata.store import (
    NODE_DIR,
    NODE_ID,
    PIPELINE,
    PIPELINE_RUN,
    RUN_ID,
    MetadataStore,
    execution_property,
)

APPROVAL_TYPE = "mlpipe.components.approval.Approval"  # the execution type of Approval nodes


@dataclass(frozen=True)
class PendingApproval:
    request: ApprovalRequest
    mailbox: str


def approve(
    metadata: MetadataStore | MetadataConfig,
    run_id: str,
    node_id: str,
    *,
    reject: bool = False,
    comment: str = "",
    user: str | None = None,
) -> ApprovalDecision:
    """Approves (or rejects) the model that node ``node_id`` of run ``run_id`` asks about.

    ``metadata`` is the pipeline's store (``pipeline.metadata`` or an open MetadataStore), so a
    notebook answers with ``mlpipe.approve(pipeline.metadata, run_id, "approval")``.

    Returns the decision that stands: an earlier one (e.g. a timeout) wins over this one, and the
    caller should say so. Raises MlpipeError when there is no such request or ``user`` may not answer.
    """
    user = user or getpass.getuser()
    store = metadata if isinstance(metadata, MetadataStore) else MetadataStore(metadata)
    pending = find_request(store, run_id, node_id)
    allowed = pending.request.approvers
    if allowed and user not in allowed:
        raise MlpipeError(
            f"{user!r} may not answer approvals of node '{node_id}'; its approvers are {allowed}"
        )
    return write_decision(pending.mailbox, ApprovalDecision(REJECTED if reject else APPROVED, user, comment))


def find_request(store: MetadataStore, run_id: str, node_id: str) -> PendingApproval:
    """The request node ``node_id`` made in run ``run_id`` (its newest execution there)."""
    run = store.context(PIPELINE_RUN, run_id, create=False)
    if run is None:
        raise MlpipeError(f"no run '{run_id}' in {store.config.describe()}; list runs with 'mlpipe runs'")
    executions = [e for e in store.executions_in_context(run) if execution_property(e, NODE_ID) == node_id]
    for execution in sorted(executions, key=lambda e: e.id, reverse=True):
        node_dir = execution_property(execution, NODE_DIR)
        models = store.input_artifacts(execution.id).get("model") or []
        if node_dir is None or len(models) != 1 or models[0].id is None:
            continue
        box = mailbox(node_dir, models[0].id)
        request = read_request(box)
        if request is not None:
            return PendingApproval(request, box)
    waiting = _request_before_execution(store, run, run_id, node_id)
    if waiting is not None:
        return waiting
    raise MlpipeError(
        f"node '{node_id}' of run '{run_id}' has not asked for an approval "
        f"(is it an Approval node, and has it started? see 'mlpipe show {run_id}')"
    )


def _request_before_execution(
    store: MetadataStore, run: Any, run_id: str, node_id: str
) -> PendingApproval | None:
    """A request made by a runner's wait in front of the node (an Airflow sensor, see
    :mod:`mlpipe.orchestration.waits`), before the node's execution exists: in the node's directory,
    which sits beside those of the run's other nodes, asked for by this run."""
    node_dirs = {execution_property(e, NODE_DIR) for e in store.executions_in_context(run)} - {None}
    for root in sorted({os.path.dirname(node_dir) for node_dir in node_dirs}):
        approvals = os.path.join(root, node_id, ".approvals")
        for box in sorted(glob.glob(os.path.join(approvals, "model-*")), reverse=True):
            request = read_request(box)
            if request is not None and request.run_id == run_id and request.node_id == node_id:
                return PendingApproval(request, box)
    return None


def pending_approvals(store: MetadataStore) -> list[PendingApproval]:
    """Requests that Approval nodes are waiting on now (RUNNING and undecided), and those a runner's
    wait made before its node runs (Airflow's sensor: undecided and not timed out), oldest first."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    executions = store.db.call(store.db.mlmd.get_executions_by_type, APPROVAL_TYPE)
    pending: dict[str, PendingApproval] = {}
    for execution in executions:
        if execution.last_known_state != pb.Execution.RUNNING:
            continue
        run_id, node_id = execution_property(execution, RUN_ID), execution_property(execution, NODE_ID)
        try:
            found = find_request(store, run_id, node_id)
        except MlpipeError:  # started, but has not written its request yet
            continue
        if read_decision(found.mailbox) is None:
            pending[found.mailbox] = found
    for found in _requests_before_execution(store):
        pending.setdefault(found.mailbox, found)
    return sorted(pending.values(), key=lambda p: p.request.created_at)


def _requests_before_execution(store: MetadataStore) -> list[PendingApproval]:
    """Undecided, unexpired requests in the approval folders under each pipeline's root (found from
    the node directories its executions record): a sensor's request has no execution to point at it."""
    roots: set[str] = set()
    for pipeline in store.db.call(store.db.mlmd.get_contexts_by_type, PIPELINE):
        for execution in store.executions_in_context(pipeline):
            node_dir = execution_property(execution, NODE_DIR)
            if node_dir:
                roots.add(os.path.dirname(node_dir))
    now = time.time()
    found = []
    for root in sorted(roots):
        for box in glob.glob(os.path.join(root, "*", ".approvals", "model-*")):
            request = read_request(box)
            if request is not None and now < request.deadline and read_decision(box) is None:
                found.append(PendingApproval(request, box))
    return found
