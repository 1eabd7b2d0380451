"""Waiting outside a node: the non-blocking check a runner makes instead of letting the node block.

A component that waits on the outside world (Approval waits for a person) may define a static
``waiting_for(inputs, parameters, node_dir, pipeline, run_id, node_id) -> str | None``: it records
what it waits for and returns a line saying so, or None once ``execute`` would finish at once. A
runner whose workers are scarce (Airflow) checks it from a sensor in reschedule mode, which frees
its worker slot between checks, and runs the node only once the check passes; the node then finds
its answer and completes without waiting. Nothing is recorded in ML Metadata by a check: the node's
one execution is recorded when it runs, as on every runner.
"""

from __future__ import annotations

import os

from mlpipe.dsl.component import Component
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.component_loader import load_component_class
from mlpipe.orchestration.conditions import unmet_condition
from mlpipe.orchestration.inputs import UpstreamSkipped, resolve_inputs

WAIT_HOOK = "waiting_for"


def has_wait(cls: type[Component]) -> bool:
    """Whether the component's nodes may wait on the outside world (and so deserve a sensor)."""
    return callable(getattr(cls, WAIT_HOOK, None))


def waiting_nodes(ir: PipelineIR) -> list[NodeIR]:
    """The nodes of ``ir`` whose component has a wait hook, in the IR's order."""
    return [node for node in ir.nodes if has_wait(load_component_class(ir, node))]


def node_waiting_for(ir: PipelineIR, node_id: str, run_id: str, store: MetadataStore) -> str | None:
    """What node ``node_id`` of run ``run_id`` still waits for, or None when running it now would not
    wait: no hook, a node that will be skipped (the launcher says why when it runs), or a hook
    that says it is done."""
    node = ir.node(node_id)
    cls = load_component_class(ir, node)
    hook = getattr(cls, WAIT_HOOK, None)
    if hook is None:
        return None
    optional = {k for k, spec in cls.SPEC.inputs.items() if spec.optional}
    try:
        if unmet_condition(store, ir, node, run_id) is not None:
            return None
        inputs = resolve_inputs(store, ir, node, run_id, optional)
    except UpstreamSkipped:
        return None
    return hook(inputs, dict(node.parameters), os.path.join(ir.root, node.id), ir.name, run_id, node.id)
