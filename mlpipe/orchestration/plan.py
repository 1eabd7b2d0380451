"""What a run would do, without running it: per node, reuse a cached result or execute, and why.

Before rerunning a long pipeline after an edit, a user wants to know what the edit re-executes;
TFX offers no way to ask. A plan makes the launcher's own decisions (the same input resolution,
cache keys and cache lookup) in order, read-only: nothing is executed and no execution, context
or artifact state is recorded. A node downstream of one that would execute executes too, since
its inputs will be new artifacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlpipe.dsl.component import Component
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.dsl.resolver import Resolver
from mlpipe.errors import ComponentError
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.store import NODE, MetadataStore
from mlpipe.orchestration.cache import cache_key, cache_miss_reason, find_cached_outputs
from mlpipe.orchestration.component_loader import load_component_class
from mlpipe.orchestration.inputs import resolve_inputs
from mlpipe.orchestration.launcher import open_store
from mlpipe.orchestration.local import select_nodes
from mlpipe.orchestration.resolvers import STRATEGY_FUNCTIONS
from mlpipe.types.artifact import Artifact

REUSE, EXECUTE, RESOLVE, FAIL = "reuse", "execute", "resolve", "fail"


@dataclass(frozen=True)
class PlannedNode:
    node_id: str
    action: str  # REUSE | EXECUTE | RESOLVE (a resolver looks again every run) | FAIL (inputs missing)
    why: str


def plan_run(
    pipeline: Pipeline | PipelineIR,
    from_nodes: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    enable_cache: bool | None = None,
    store: MetadataStore | None = None,
) -> list[PlannedNode]:
    """What ``LocalDagRunner().run(pipeline, ...)`` with the same arguments would do now, in order."""
    classes: dict[str, type[Component]] = {}
    if isinstance(pipeline, Pipeline):
        classes = {c.id: type(c) for c in pipeline.components}
        ir = pipeline.compile()
    else:
        ir = pipeline
    selected = select_nodes(ir, from_nodes, only)
    own_store = store is None
    store = store or open_store(ir)
    use_cache = ir.enable_cache if enable_cache is None else enable_cache
    try:
        # outputs each planned node will give: its cached or resolved artifacts, None if it executes
        produced: dict[str, dict[str, list[Artifact]] | None] = {}
        steps = []
        for node_id in selected:
            node = ir.node(node_id)
            cls = classes.get(node_id) or load_component_class(ir, node)
            step, produced[node_id] = _plan_node(store, ir, node, cls, produced, use_cache)
            steps.append(step)
        return steps
    finally:
        if own_store:
            store.close()


def _plan_node(
    store: MetadataStore, ir: PipelineIR, node: NodeIR, cls: type[Component],
    produced: Mapping[str, dict[str, list[Artifact]] | None], use_cache: bool,
) -> tuple[PlannedNode, dict[str, list[Artifact]] | None]:  # fmt: skip
    if issubclass(cls, Resolver):
        resolved = STRATEGY_FUNCTIONS[node.parameters["strategy"]](store, ir, node)
        found = ", ".join(f"{k}: {_ids(v)}" for k, v in resolved.items())
        return PlannedNode(node.id, RESOLVE, f"resolves {found}"), resolved
    executing = [
        f"input '{key}' will be new ({wire.producer} executes)"
        for key, wire in node.inputs.items()
        if wire.producer in produced and produced[wire.producer] is None
    ]
    if executing:
        return PlannedNode(node.id, EXECUTE, "; ".join(executing)), None
    optional = {k for k, spec in cls.SPEC.inputs.items() if spec.optional}
    known = {n: outputs for n, outputs in produced.items() if outputs is not None}
    try:
        inputs = resolve_inputs(store, ir, node, run_id="", optional=optional, produced=known)
    except ComponentError as e:
        return PlannedNode(node.id, FAIL, str(e.cause)), None
    key = cache_key(cls, node, inputs)
    if not use_cache:
        return PlannedNode(node.id, EXECUTE, "caching is off"), None
    context = store.context(NODE, f"{ir.name}.{node.id}", create=False)
    executions = store.executions_in_context(context) if context is not None else []
    hit = find_cached_outputs(store, executions, key.digest, mark_deleted=False)
    if hit is not None:
        return PlannedNode(node.id, REUSE, f"reuses execution {hit[0]}"), hit[1]
    return PlannedNode(node.id, EXECUTE, cache_miss_reason(executions, key)), None


def _ids(artifacts: list[Artifact]) -> str:
    return ",".join(str(a.id) for a in artifacts) or "none"
