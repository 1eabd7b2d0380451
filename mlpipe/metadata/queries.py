"""Read-only questions users ask of the store: runs, executions, artifacts, lineage.

Only LIVE artifacts are ever returned: PENDING (being written), ABANDONED (failed) and DELETED
(files gone) artifacts are bookkeeping, not results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpipe.errors import MetadataError
from mlpipe.metadata.store import (
    CACHE_MISS,
    CACHED_FROM,
    ERROR,
    LOG_PATH,
    NODE_ID,
    PIPELINE,
    PIPELINE_NAME,
    PIPELINE_RUN,
    SKIP_REASON,
    MetadataStore,
    execution_property,
)
from mlpipe.types.artifact import LIVE, Artifact


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    pipeline: str
    created_ms: int
    states: dict[str, int]  # execution state -> count


@dataclass(frozen=True)
class ExecutionInfo:
    id: int
    node_id: str
    state: str
    type_name: str
    created_ms: int
    updated_ms: int
    log_path: str | None
    error: str | None
    outputs: dict[str, list[Artifact]] = field(default_factory=dict)
    cache_miss: str | None = None  # why it executed: what changed since the node's last success
    cached_from: int | None = None  # the execution whose outputs a CACHED execution reuses
    skip_reason: str | None = None  # why a SKIPPED node did not run

    @property
    def why(self) -> str | None:
        """One line for tables: why it executed or was skipped, or which execution's outputs it reuses."""
        if self.cached_from is not None:
            return f"reuses execution {self.cached_from}"
        return self.skip_reason or self.cache_miss


@dataclass(frozen=True)
class Lineage:
    artifact: Artifact
    producer: ExecutionInfo | None
    upstream: list[Artifact]  # every artifact the producer chain consumed, nearest first
    downstream: list[Artifact]  # every artifact derived from this one, nearest first
    consumers: list[ExecutionInfo]


def _state_name(execution: Any) -> str:
    """MLMD's state name, except SKIPPED for the CANCELED execution of a node a Cond skipped."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    if execution_property(execution, SKIP_REASON) is not None:
        return "SKIPPED"
    return pb.Execution.State.Name(execution.last_known_state)


def _live(artifacts: list[Artifact]) -> list[Artifact]:
    return [a for a in artifacts if a.state == LIVE]


def _execution_info(store: MetadataStore, execution: Any, with_outputs: bool = True) -> ExecutionInfo:
    (etype,) = store.db.call(store.db.mlmd.get_execution_types_by_id, [execution.type_id])
    outputs = store.output_artifacts(execution.id) if with_outputs else {}
    return ExecutionInfo(
        id=execution.id,
        node_id=execution_property(execution, NODE_ID, ""),
        state=_state_name(execution),
        type_name=etype.name,
        created_ms=execution.create_time_since_epoch,
        updated_ms=execution.last_update_time_since_epoch,
        log_path=execution_property(execution, LOG_PATH),
        error=execution_property(execution, ERROR),
        outputs={k: _live(v) for k, v in outputs.items() if _live(v)},
        cache_miss=execution_property(execution, CACHE_MISS),
        cached_from=execution_property(execution, CACHED_FROM),
        skip_reason=execution_property(execution, SKIP_REASON),
    )


def list_runs(store: MetadataStore, pipeline: str | None = None) -> list[RunInfo]:
    """Runs, newest first (optionally of one pipeline), with counts of execution states."""
    runs = []
    for ctx in store.db.call(store.db.mlmd.get_contexts_by_type, PIPELINE_RUN):
        name = (
            ctx.custom_properties[PIPELINE_NAME].string_value
            if PIPELINE_NAME in ctx.custom_properties
            else ""
        )
        if pipeline and name != pipeline:
            continue
        states: dict[str, int] = {}
        for e in store.executions_in_context(ctx):
            states[_state_name(e)] = states.get(_state_name(e), 0) + 1
        runs.append(RunInfo(ctx.name, name, ctx.create_time_since_epoch, states))
    return sorted(runs, key=lambda r: (r.created_ms, r.run_id), reverse=True)


def list_pipelines(store: MetadataStore) -> list[str]:
    return sorted(c.name for c in store.db.call(store.db.mlmd.get_contexts_by_type, PIPELINE))


def run_executions(store: MetadataStore, run_id: str) -> list[ExecutionInfo]:
    """Executions of one run in the order they started."""
    ctx = store.context(PIPELINE_RUN, run_id, create=False)
    if ctx is None:
        raise MetadataError(f"no run '{run_id}' in {store.config.describe()}; list runs with 'mlpipe runs'")
    return [_execution_info(store, e) for e in sorted(store.executions_in_context(ctx), key=lambda e: e.id)]


def artifacts(store: MetadataStore, type_name: str | None = None) -> list[Artifact]:
    """LIVE artifacts (optionally of one type), newest first."""
    if type_name:
        protos = store.db.call(store.db.mlmd.get_artifacts_by_type, type_name)
    else:
        protos = store.db.call(store.db.mlmd.get_artifacts)
    from mlpipe.metadata.convert import artifact_from_proto

    found = [artifact_from_proto(p, store.artifact_type(p.type_id)) for p in protos]
    return sorted(_live(found), key=lambda a: a.id or 0, reverse=True)


def get_artifact(store: MetadataStore, artifact_id: int) -> Artifact:
    from mlpipe.metadata.convert import artifact_from_proto

    protos = store.db.call(store.db.mlmd.get_artifacts_by_id, [artifact_id])
    if not protos:
        raise MetadataError(
            f"no artifact {artifact_id} in {store.config.describe()}; list them with 'mlpipe artifacts'"
        )
    artifact = artifact_from_proto(protos[0], store.artifact_type(protos[0].type_id))
    if artifact.state != LIVE:
        raise MetadataError(f"artifact {artifact_id} is {artifact.state}, not a published result")
    return artifact


def lineage(store: MetadataStore, artifact_id: int) -> Lineage:
    """Where an artifact came from and what was made from it, following INPUT/OUTPUT events."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    artifact = get_artifact(store, artifact_id)
    done = (pb.Execution.COMPLETE,)

    def producer_of(aid: int) -> Any | None:
        events = store.db.call(store.db.mlmd.get_events_by_artifact_ids, [aid])
        ids = [e.execution_id for e in events if e.type == pb.Event.OUTPUT]
        executions = [
            e for e in store.db.call(store.db.mlmd.get_executions_by_id, ids) if e.last_known_state in done
        ]
        return min(executions, key=lambda e: e.id) if executions else None

    producer = producer_of(artifact_id)
    upstream: list[Artifact] = []
    frontier = [producer] if producer else []
    seen: set[int] = {artifact_id}
    while frontier:
        execution = frontier.pop(0)
        for arts in store.input_artifacts(execution.id).values():
            for a in arts:
                assert a.id is not None  # read from the store
                if a.id not in seen:
                    seen.add(a.id)
                    upstream.append(a)
                    p = producer_of(a.id)
                    if p is not None:
                        frontier.append(p)

    downstream: list[Artifact] = []
    consumers: list[ExecutionInfo] = []
    queue, seen_down = [artifact_id], {artifact_id}
    while queue:
        aid = queue.pop(0)
        events = store.db.call(store.db.mlmd.get_events_by_artifact_ids, [aid])
        exec_ids = sorted({e.execution_id for e in events if e.type == pb.Event.INPUT})
        for execution in store.db.call(store.db.mlmd.get_executions_by_id, exec_ids):
            if execution.last_known_state not in done:
                continue
            if aid == artifact_id:
                consumers.append(_execution_info(store, execution, with_outputs=False))
            for arts in store.output_artifacts(execution.id).values():
                for a in _live(arts):
                    assert a.id is not None  # read from the store
                    if a.id not in seen_down:
                        seen_down.add(a.id)
                        downstream.append(a)
                        queue.append(a.id)
    producer_info = _execution_info(store, producer, with_outputs=False) if producer else None
    return Lineage(artifact, producer_info, _live(upstream), downstream, consumers)
