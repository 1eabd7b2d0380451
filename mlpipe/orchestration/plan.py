"""What a run would do, without running it: per node, reuse a cached result or execute, and why.

Before rerunning a long pipeline after an edit, a user wants to know what the edit re-executes;
TFX offers no way to ask. A plan makes the launcher's own decisions (the same input resolution,
cache keys and cache lookup) in order, read-only: nothing is executed and no execution, context
or artifact state is recorded, and a missing SQLite store is not created. A node downstream of one
that would execute executes too, since its inputs will be new artifacts (unless the component
leaves that input out of its cache key).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from mlpipe.dsl.component import Component
from mlpipe.dsl.condition import describe, producers_read
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.dsl.resolver import Resolver
from mlpipe.errors import ComponentError, MlpipeError
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.config import sqlite
from mlpipe.metadata.store import NODE, MetadataStore
from mlpipe.orchestration.cache import cache_key, cache_miss_reason, find_cached_outputs
from mlpipe.orchestration.component_loader import load_component_class
from mlpipe.orchestration.conditions import first_unmet, recorded_outputs
from mlpipe.orchestration.inputs import UpstreamSkipped, resolve_inputs
from mlpipe.orchestration.launcher import output_classes, store_config
from mlpipe.orchestration.local import compile_with_classes, select_nodes
from mlpipe.orchestration.resolvers import STRATEGY_FUNCTIONS
from mlpipe.types.artifact import Artifact
from mlpipe.types.registry import resolve_type

REUSE, EXECUTE, RESOLVE, SKIP, FAIL, NOT_RUN = "reuse", "execute", "resolve", "skip", "fail", "not run"

# What a planned node will output: its cached or resolved artifacts, or NEW (it executes, or a
# resolver decides only after an upstream node executes), SKIPPED (a Cond does not hold) or NONE
# (it fails or does not run).
Outputs = dict[str, list[Artifact]]
NEW, SKIPPED, NONE = "new", "skipped", "none"


@dataclass(frozen=True)
class PlannedNode:
    """One node's fate in the planned run: ``action`` is REUSE (a cached result), EXECUTE, RESOLVE
    (a resolver looks again every run), SKIP (a ``Cond`` does not hold, on values known now; one
    that reads an executing node's outputs is decided in the run, and ``why`` says so), FAIL (an input cannot be found, as the run would fail) or
    NOT_RUN (downstream of a failure; after a failure the runner starts no new node, so nodes that
    do not depend on it may not run either, depending on timing); ``why`` says why, in the
    launcher's words."""

    node_id: str
    action: str
    why: str


def plan_run(
    pipeline: Pipeline | PipelineIR,
    from_nodes: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    enable_cache: bool | None = None,
    store: MetadataStore | None = None,
) -> list[PlannedNode]:
    """What ``LocalDagRunner().run(pipeline, ...)`` with the same arguments would do now, in order.

    A pipeline whose SQLite store does not exist yet is planned against an empty one in a
    temporary directory, so that planning creates no file.
    """
    ir, classes = compile_with_classes(pipeline)
    selected = select_nodes(ir, from_nodes, only)
    use_cache = ir.enable_cache if enable_cache is None else enable_cache
    with contextlib.ExitStack() as cleanup:
        if store is None:
            store = _open_without_creating(ir, cleanup)
            cleanup.callback(store.close)
        planned: dict[str, Outputs | str] = {}
        steps = []
        for node_id in selected:
            node = ir.node(node_id)
            step, planned[node_id] = _plan_node(store, ir, node, classes, planned, use_cache)
            steps.append(step)
        return steps


def _open_without_creating(ir: PipelineIR, cleanup: contextlib.ExitStack) -> MetadataStore:
    config = store_config(ir)
    if config.kind == "sqlite" and not os.path.exists(config.path):
        empty = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="mlpipe-plan-"))
        config = sqlite(os.path.join(empty, "metadata.sqlite"))
    return MetadataStore(config)


def _plan_node(
    store: MetadataStore, ir: PipelineIR, node: NodeIR, classes: dict[str, type[Component]],
    planned: dict[str, Outputs | str], use_cache: bool,
) -> tuple[PlannedNode, Outputs | str]:  # fmt: skip
    """The launcher's decisions for ``node``, given what the nodes planned before it will output."""
    failed = [u for u in node.upstream if planned.get(u) == NONE]
    if failed:
        return PlannedNode(node.id, NOT_RUN, f"not run: {failed[0]} does not complete"), NONE
    try:
        cls = classes.get(node.id) or load_component_class(ir, node)
        optional = {k for k, spec in cls.SPEC.inputs.items() if spec.optional}
        skip = _skip_reason(store, ir, node, cls, optional, planned)
        if skip is not None:
            return PlannedNode(node.id, SKIP, skip), SKIPPED
        undecided = [p for p in producers_read(node.conditions) if planned.get(p) == NEW]
        if undecided:  # the predicate reads outputs that do not exist yet: the run decides
            step, outputs = _plan_unconditioned(store, ir, node, cls, optional, planned, use_cache)
            when = " & ".join(f"({describe(p)})" for p in node.conditions)
            return PlannedNode(step.node_id, step.action, f"{step.why}; only if {when}, known once "
                               f"{undecided[0]} executes"), outputs  # fmt: skip
        return _plan_unconditioned(store, ir, node, cls, optional, planned, use_cache)
    except UpstreamSkipped as e:  # a producer outside the plan whose newest outcome is a skip
        return PlannedNode(node.id, SKIP, str(e)), SKIPPED
    except MlpipeError as e:  # as the run would report this node failed
        return PlannedNode(node.id, FAIL, str(e.cause) if isinstance(e, ComponentError) else str(e)), NONE


def _skip_reason(
    store: MetadataStore, ir: PipelineIR, node: NodeIR, cls: type[Component], optional: set[str],
    planned: dict[str, Outputs | str],
) -> str | None:  # fmt: skip
    """Why the run would skip ``node``: a predicate false on outputs known now, or a required input
    from a node the plan skips; None otherwise."""
    if node.conditions and not any(planned.get(p) == NEW for p in producers_read(node.conditions)):
        recorded = recorded_outputs(store, ir, run_id="")

        def read_channel(producer: str, key: str) -> list[Artifact]:
            outputs = planned.get(producer)
            if outputs == SKIPPED:
                raise UpstreamSkipped(f"node '{producer}' will be skipped")
            return outputs.get(key, []) if isinstance(outputs, dict) else recorded(producer, key)

        try:
            reason = first_unmet(node, read_channel)
        except UpstreamSkipped as e:
            return str(e)
        if reason is not None:
            return reason
    if issubclass(cls, Resolver):  # it picks the newest artifacts of any run, whatever ran in this one
        return None
    for key, wire in node.inputs.items():
        if planned.get(wire.producer) == SKIPPED and key not in optional:
            return f"input '{key}': node '{wire.producer}' will be skipped"
    return None


def _plan_unconditioned(
    store: MetadataStore, ir: PipelineIR, node: NodeIR, cls: type[Component], optional: set[str],
    planned: dict[str, Outputs | str], use_cache: bool,
) -> tuple[PlannedNode, Outputs | str]:  # fmt: skip
    """The launcher's decisions for a node that runs: resolve, reuse or execute."""
    if issubclass(cls, Resolver):
        return _plan_resolver(store, ir, node, planned)
    # an executing producer's outputs are new artifacts: placeholders without an id stand in
    expected = {
        n: {k: [resolve_type(t)()] if outputs == NEW else [] for k, t in ir.node(n).outputs.items()}
        if isinstance(outputs, str)  # NEW or SKIPPED
        else outputs
        for n, outputs in planned.items()
        if outputs != NONE
    }
    # run_id "" belongs to no execution: producers outside the plan resolve as in a partial run
    inputs = resolve_inputs(store, ir, node, run_id="", optional=optional, produced=expected)
    key = cache_key(cls, node, inputs)
    if not use_cache:
        return PlannedNode(node.id, EXECUTE, "caching is off"), NEW
    new = [
        f"input '{k}' will be new ({node.inputs[k].producer} executes)"
        for k in cls.inputs_for_cache(inputs)
        if k in node.inputs and planned.get(node.inputs[k].producer) == NEW
    ]
    if new:
        return PlannedNode(node.id, EXECUTE, "; ".join(new)), NEW
    context = store.context(NODE, f"{ir.name}.{node.id}", create=False)
    executions = store.executions_in_context(context) if context is not None else []
    hit = find_cached_outputs(store, executions, key, output_classes(node), mark_deleted=False)
    if hit is not None:
        return PlannedNode(node.id, REUSE, f"reuses execution {hit[0]}"), hit[1]
    return PlannedNode(node.id, EXECUTE, cache_miss_reason(executions, key)), NEW


def _plan_resolver(
    store: MetadataStore, ir: PipelineIR, node: NodeIR, planned: dict[str, Outputs | str]
) -> tuple[PlannedNode, Outputs | str]:
    """A resolver runs after its upstream nodes: after one that executes, what it will find is
    not known yet; after cached ones, a wired channel gives their (cached) outputs, which their
    new CACHED executions make the newest."""
    executing = [u for u in node.upstream if planned.get(u) == NEW]
    if executing:
        return PlannedNode(node.id, RESOLVE, f"resolves after {executing[0]} executes"), NEW
    resolved = STRATEGY_FUNCTIONS[node.parameters["strategy"]](store, ir, node)
    for key, wire in node.inputs.items():
        outputs = planned.get(wire.producer)
        if isinstance(outputs, dict) and key in resolved:
            resolved[key] = outputs.get(wire.key, [])[:1]
    found = ", ".join(f"{k}: {_ids(v)}" for k, v in resolved.items())
    return PlannedNode(node.id, RESOLVE, f"resolves {found}"), resolved


def _ids(artifacts: list[Artifact]) -> str:
    return ",".join(str(a.id) for a in artifacts) or "none"
