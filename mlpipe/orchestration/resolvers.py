"""Resolution strategies of Resolver nodes, over the pipeline's ML Metadata records."""

from __future__ import annotations

from collections.abc import Callable

from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.convert import artifact_from_proto
from mlpipe.metadata.store import NODE, PIPELINE, MetadataStore
from mlpipe.orchestration.inputs import artifacts_available, successful_executions
from mlpipe.types.artifact import Artifact
from mlpipe.types.registry import resolve_type

Resolved = dict[str, list[Artifact]]


def _pipeline_artifacts(store: MetadataStore, ir: PipelineIR, type_ref: str) -> list[Artifact]:
    """Available artifacts of one type attributed to this pipeline, newest first."""
    cls = resolve_type(type_ref)
    ctx = store.context(PIPELINE, ir.name, create=False)
    if ctx is None:
        return []
    protos = store.db.call(store.db.mlmd.get_artifacts_by_context, ctx.id)
    found = [
        artifact_from_proto(p, store.artifact_type(p.type_id), cls)
        for p in protos
        if store.artifact_type(p.type_id).name == cls.TYPE_NAME
    ]
    return sorted((a for a in found if artifacts_available([a])), key=lambda a: a.id or 0, reverse=True)


def _channel_artifacts(store: MetadataStore, ir: PipelineIR, node: NodeIR, key: str) -> list[Artifact]:
    """Available outputs of a wired producer, newest execution first."""
    wire = node.inputs[key]
    ctx = store.context(NODE, f"{ir.name}.{wire.producer}", create=False)
    found: list[Artifact] = []
    for execution in successful_executions(store, ctx) if ctx else []:
        outputs = store.output_artifacts(execution.id, {wire.key: resolve_type(wire.type)}).get(wire.key, [])
        found += [a for a in outputs if artifacts_available([a]) and a.id not in {f.id for f in found}]
    return found


def latest_artifact(store: MetadataStore, ir: PipelineIR, node: NodeIR) -> Resolved:
    resolved: Resolved = {}
    for key, type_ref in node.parameters["types"].items():
        candidates = (
            _channel_artifacts(store, ir, node, key)
            if key in node.inputs
            else _pipeline_artifacts(store, ir, type_ref)
        )
        resolved[key] = candidates[:1]
    return resolved


def latest_blessed_model(store: MetadataStore, ir: PipelineIR, node: NodeIR) -> Resolved:
    """The newest model some ModelBlessing of this pipeline blessed (``current_model_id``), with it."""
    types = node.parameters["types"]
    models = {m.id: m for m in _pipeline_artifacts(store, ir, types["model"])}
    blessings = [
        b
        for b in _pipeline_artifacts(store, ir, types["model_blessing"])
        if b.get_custom_property("blessed") == 1 and b.get_custom_property("current_model_id") in models
    ]
    if not blessings:
        return {"model": [], "model_blessing": []}
    best = max(blessings, key=lambda b: (b.get_custom_property("current_model_id"), b.id))
    return {"model": [models[best.get_custom_property("current_model_id")]], "model_blessing": [best]}


STRATEGY_FUNCTIONS: dict[str, Callable[[MetadataStore, PipelineIR, NodeIR], Resolved]] = {
    "latest_artifact": latest_artifact,
    "latest_blessed_model": latest_blessed_model,
}
