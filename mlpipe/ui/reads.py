"""The dashboard's questions to the store, each answered with a few short MLMD reads.

Runs are listed a page at a time (newest first, ``before`` = the id of the last run context
shown), with one query for the page's contexts and one for all their executions, so the list
costs the same with ten runs or ten thousand. A run's DAG is read from MLMD itself: an edge joins
the node that output an artifact in the run to each node that consumed it, so any run of any
pipeline can be drawn without its source file; with the file (``-p``) nodes that have not started
are drawn too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlpipe.errors import MetadataError
from mlpipe.ir import InputIR, NodeIR, PipelineIR
from mlpipe.metadata.queries import ExecutionInfo, _state_name, run_executions
from mlpipe.metadata.store import (
    NODE_ID,
    PIPELINE_NAME,
    PIPELINE_RUN,
    RUN_ID,
    MetadataStore,
    execution_property,
)
from mlpipe.types.artifact import LIVE, Artifact

PAGE_SIZE = 25
QUIET_MS = 15_000  # a run with no change for this long, and no RUNNING node, is taken as finished
RUN_STATES = ("RUNNING", "FAILED", "COMPLETE")


class NotFound(MetadataError):
    """The page asks for a run, execution or artifact the store does not have (an HTTP 404)."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    pipeline: str
    context_id: int
    created_ms: int
    counts: dict[str, int]  # execution state -> number of nodes in it
    duration_s: float | None
    updated_ms: int  # the newest change to any of its executions (0 before the first)

    @property
    def state(self) -> str:
        return run_state(self.counts)

    def may_change(self, now_ms: int) -> bool:
        """Worth watching: a node runs, or one finished so recently that the next may be starting
        (between two nodes no execution is RUNNING, yet the run is not over)."""
        return self.state == "RUNNING" or now_ms - self.updated_ms < QUIET_MS


@dataclass(frozen=True)
class RunsPage:
    rows: list[RunRow]
    before: int | None  # pass as ``before`` to get the next (older) page; None on the last page


@dataclass(frozen=True)
class RunDetail:
    row: RunRow
    executions: list[ExecutionInfo]
    dag: PipelineIR
    planned: bool  # the DAG is the pipeline file's (every node, run or not), not only what ran
    inputs: dict[int, dict[str, list[Artifact]]] = field(default_factory=dict)  # execution id -> key -> arts


def run_state(counts: dict[str, int]) -> str:
    """A run is RUNNING while any node runs, FAILED if one failed, else COMPLETE (cached/skipped too)."""
    for state in ("RUNNING", "FAILED"):
        if counts.get(state):
            return state
    return "COMPLETE"


def _options(**kwargs: Any) -> Any:
    from ml_metadata.metadata_store import metadata_store

    return metadata_store.ListOptions(**kwargs)


def _quoted(name: str) -> str:
    """A string literal for an MLMD filter query (backslash escapes, as in its SQL-like syntax)."""
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def runs_page(
    store: MetadataStore,
    pipeline: str | None = None,
    state: str | None = None,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> RunsPage:
    """One page of runs, newest first, optionally of one pipeline and in one state."""
    from ml_metadata.metadata_store import metadata_store

    where = ["type = 'pipeline_run'"]
    if pipeline:
        where.append(f"custom_properties.{PIPELINE_NAME}.string_value = {_quoted(pipeline)}")
    rows: list[RunRow] = []
    while len(rows) <= size:  # one row more than a page tells whether an older page exists
        query = where + ([f"id < {int(before)}"] if before is not None else [])
        contexts = store.db.call(
            store.db.mlmd.get_contexts,
            list_options=_options(
                limit=size + 1,
                order_by=metadata_store.OrderByField.ID,
                is_asc=False,
                filter_query=" AND ".join(query),
            ),
        )
        rows += [r for r in _run_rows(store, contexts) if state is None or r.state == state]
        if len(contexts) <= size:
            break
        before = contexts[-1].id
    if len(rows) > size:
        return RunsPage(rows[:size], rows[size - 1].context_id)
    return RunsPage(rows, None)


def _run_rows(store: MetadataStore, contexts: list[Any]) -> list[RunRow]:
    """Rows for run contexts: their executions in one query, grouped by the run id they record."""
    if not contexts:
        return []
    names = ", ".join(_quoted(c.name) for c in contexts)
    executions = store.db.call(
        store.db.mlmd.get_executions,
        list_options=_options(
            filter_query=f"contexts_a.type = 'pipeline_run' AND contexts_a.name IN ({names})"
        ),
    )
    by_run: dict[str, list[Any]] = {}
    for e in executions:
        by_run.setdefault(execution_property(e, RUN_ID, ""), []).append(e)
    return [_run_row(c, by_run.get(c.name, [])) for c in contexts]


def _run_row(context: Any, executions: list[Any]) -> RunRow:
    counts: dict[str, int] = {}
    for e in executions:
        state = _state_name(e)  # SKIPPED for a Cond's CANCELED execution, as `mlpipe show` says
        counts[state] = counts.get(state, 0) + 1
    duration, updated = None, 0
    if executions:
        updated = max(e.last_update_time_since_epoch for e in executions)
        start = min(e.create_time_since_epoch for e in executions)
        duration = (updated - start) / 1000
    pipeline = (
        context.custom_properties[PIPELINE_NAME].string_value
        if PIPELINE_NAME in context.custom_properties
        else ""
    )
    return RunRow(
        context.name, pipeline, context.id, context.create_time_since_epoch, counts, duration, updated
    )


def run_detail(store: MetadataStore, run_id: str, pipeline_ir: PipelineIR | None = None) -> RunDetail:
    """A run's executions, their inputs, and its DAG (from ``pipeline_ir`` when it is this pipeline)."""
    context = store.context(PIPELINE_RUN, run_id, create=False)
    if context is None:
        raise NotFound(f"no run {run_id!r} in this store")
    executions = run_executions(store, run_id)
    row = _run_row(context, store.executions_in_context(context))
    inputs = {e.id: store.input_artifacts(e.id) for e in executions}
    planned = pipeline_ir is not None and pipeline_ir.name == row.pipeline
    if pipeline_ir is not None and planned:
        dag = pipeline_ir
    else:
        dag = dag_from_executions(row.pipeline, executions, inputs)
    return RunDetail(row, executions, dag, planned, inputs)


def dag_from_executions(
    name: str, executions: list[ExecutionInfo], inputs: dict[int, dict[str, list[Artifact]]]
) -> PipelineIR:
    """The run's DAG as recorded: node B follows node A when B consumed an artifact A output in the run."""
    producer = {a.id: e.node_id for e in executions for arts in e.outputs.values() for a in arts}
    wired: dict[str, dict[str, InputIR]] = {}
    for e in executions:
        wired[e.node_id] = {
            key: InputIR(producer[arts[0].id], key, arts[0].type_name)
            for key, arts in inputs.get(e.id, {}).items()
            if arts and arts[0].id in producer and producer[arts[0].id] != e.node_id
        }
    order: list[str] = []  # topological: a node after every producer it consumes from
    pending = list(dict.fromkeys(e.node_id for e in executions))
    while pending:
        ready = [
            n for n in pending if all(i.producer in order for i in wired.get(n, {}).values())
        ] or pending[:1]
        order += ready
        pending = [n for n in pending if n not in ready]
    kinds = {e.node_id: e.type_name for e in executions}
    nodes = tuple(NodeIR(n, kinds[n], None, {}, wired.get(n, {}), {}, ()) for n in order)
    return PipelineIR(name, "", {}, True, nodes)


def execution_detail(store: MetadataStore, execution_id: int) -> tuple[str, ExecutionInfo, dict[str, Any]]:
    """(run id, the execution, its parameters) — parameters are the custom properties users set."""
    found = store.db.call(store.db.mlmd.get_executions_by_id, [execution_id])
    if not found:
        raise NotFound(f"no execution {execution_id} in this store")
    run_id = execution_property(found[0], RUN_ID, "")
    info = next((e for e in run_executions(store, run_id) if e.id == execution_id), None) if run_id else None
    if info is None:
        raise NotFound(f"execution {execution_id} belongs to no run")
    from mlpipe.metadata.convert import get_value

    parameters = {
        k: get_value(v) for k, v in sorted(found[0].custom_properties.items()) if not k.startswith("__")
    }
    return run_id, info, parameters


def pipelines(store: MetadataStore) -> list[str]:
    from mlpipe.metadata.queries import list_pipelines

    return list_pipelines(store)


@dataclass(frozen=True)
class PushedVersion:
    pushed: Artifact
    destination: str  # the version directory
    version: str
    evaluation: Artifact | None  # the Evaluator output that blessed the model


def pushed_models(store: MetadataStore) -> dict[str, list[PushedVersion]]:
    """Pushed model versions per serving directory (the model's base path), newest first."""
    import os

    from mlpipe.metadata.queries import artifacts

    by_dir: dict[str, list[PushedVersion]] = {}
    for a in artifacts(store, "PushedModel"):
        if int(a.custom_properties.get("pushed", 0)) != 1:
            continue
        destination = str(a.custom_properties.get("pushed_destination", ""))
        version = str(a.custom_properties.get("pushed_version", os.path.basename(destination)))
        by_dir.setdefault(os.path.dirname(destination), []).append(
            PushedVersion(a, destination, version, _evaluation_behind(store, a))
        )
    return by_dir


def _evaluation_behind(store: MetadataStore, pushed: Artifact) -> Artifact | None:
    """The ModelEvaluation written beside the blessing the Pusher consumed."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    def producer(artifact_id: int) -> int | None:
        events = store.db.call(store.db.mlmd.get_events_by_artifact_ids, [artifact_id])
        ids = sorted(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
        return ids[0] if ids else None

    pusher = producer(pushed.id or 0)
    if pusher is None:
        return None
    blessings = [
        a for arts in store.input_artifacts(pusher).values() for a in arts if a.type_name == "ModelBlessing"
    ]
    for blessing in blessings:
        evaluator = producer(blessing.id or 0)
        if evaluator is not None:
            for evaluation in store.output_artifacts(evaluator).get("evaluation", []):
                if evaluation.state == LIVE:
                    return evaluation
    return None


@dataclass(frozen=True)
class LineageGraph:
    """Artifacts around one artifact, an edge where an execution turned one into another, and the
    files the chain read (data directories, module files with the content hash the cache used)."""

    artifact_id: int
    artifacts: dict[int, Artifact]
    producers: dict[int, tuple[int, str]]  # artifact id -> (execution id, node id) that made it
    edges: set[tuple[int, int]]  # (input artifact id, output artifact id)
    sources: list[tuple[str, int, str, str]]  # (node id, execution id, parameter, value)

    def dag(self) -> PipelineIR:
        """The graph in the shape the DAG picture draws: one box per artifact, in topological order."""
        label = {i: f"{a.type_name} {i}" for i, a in self.artifacts.items()}
        into: dict[int, list[int]] = {i: [] for i in self.artifacts}
        for source, target in self.edges:
            into[target].append(source)
        order: list[int] = []
        pending = sorted(self.artifacts)
        while pending:
            ready = [i for i in pending if all(s in order for s in into[i])] or pending[:1]
            order += ready
            pending = [i for i in pending if i not in ready]
        nodes = tuple(
            NodeIR(
                label[i],
                self.producers.get(i, (0, "made outside a pipeline"))[1],
                None,
                {},
                {str(s): InputIR(label[s], "", "") for s in sorted(into[i])},
                {},
                (),
            )
            for i in order
        )
        return PipelineIR("lineage", "", {}, True, nodes)


SOURCE_PARAMETERS = ("input_base", "module_file", "schema_file", "query")


def lineage_graph(store: MetadataStore, artifact_id: int) -> LineageGraph:
    """Upstream through producers and downstream through consumers, following COMPLETE executions."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from mlpipe.metadata.queries import get_artifact

    start = get_artifact(store, artifact_id)
    artifacts: dict[int, Artifact] = {artifact_id: start}
    producers: dict[int, tuple[int, str]] = {}
    edges: set[tuple[int, int]] = set()
    sources: list[tuple[str, int, str, str]] = []
    done = pb.Execution.COMPLETE

    def executions_of(aid: int, kind: int) -> list[Any]:
        events = store.db.call(store.db.mlmd.get_events_by_artifact_ids, [aid])
        ids = sorted({e.execution_id for e in events if e.type == kind})
        found = store.db.call(store.db.mlmd.get_executions_by_id, ids) if ids else []
        return sorted((e for e in found if e.last_known_state == done), key=lambda e: e.id)

    upstream, seen_exec = [artifact_id], set()
    while upstream:
        aid = upstream.pop(0)
        made_by = executions_of(aid, pb.Event.OUTPUT)[:1]  # the first maker, not a later reuse
        for execution in made_by:
            node = execution_property(execution, NODE_ID, "")
            producers[aid] = (execution.id, node)
            if execution.id in seen_exec:
                for arts in store.input_artifacts(execution.id).values():
                    edges.update((a.id, aid) for a in arts if a.id in artifacts)
                continue
            seen_exec.add(execution.id)
            sources += _sources(execution, node)
            for arts in store.input_artifacts(execution.id).values():
                for a in arts:
                    if a.state != LIVE or a.id is None:
                        continue
                    edges.add((a.id, aid))
                    if a.id not in artifacts:
                        artifacts[a.id] = a
                        upstream.append(a.id)

    downstream = [artifact_id]
    while downstream:
        aid = downstream.pop(0)
        for execution in executions_of(aid, pb.Event.INPUT):
            for arts in store.output_artifacts(execution.id).values():
                for a in arts:
                    if a.state != LIVE or a.id is None:
                        continue
                    edges.add((aid, a.id))
                    if a.id not in artifacts:
                        artifacts[a.id] = a
                        producers[a.id] = (execution.id, execution_property(execution, NODE_ID, ""))
                        downstream.append(a.id)
    return LineageGraph(artifact_id, artifacts, producers, edges, sources)


def _sources(execution: Any, node: str) -> list[tuple[str, int, str, str]]:
    """The files an execution read by parameter, with the module file's hash from its cache key."""
    import json

    from mlpipe.metadata.store import CACHE_KEY_PARTS

    found = []
    for name in SOURCE_PARAMETERS:
        value = execution_property(execution, name)
        if value not in (None, "", "null"):
            found.append((node, execution.id, name, str(value)))
    parts = json.loads(execution_property(execution, CACHE_KEY_PARTS, "{}") or "{}")
    for key, digest in sorted(parts.items()):
        if key.startswith("module_file:"):
            found.append((node, execution.id, f"{key.split(':', 1)[1]} content", str(digest)))
    return found


@dataclass(frozen=True)
class ArtifactsPage:
    artifacts: list[Artifact]
    before: int | None  # the id to pass for the next (older) page; None on the last page


def artifacts_page(
    store: MetadataStore, type_name: str | None = None, before: int | None = None, size: int = 50
) -> ArtifactsPage:
    """One page of published (LIVE) artifacts, newest first, optionally of one type: one query."""
    from ml_metadata.metadata_store import metadata_store

    from mlpipe.metadata.convert import artifact_from_proto

    where = ["state = LIVE"]
    if type_name:
        where.append(f"type = {_quoted(type_name)}")
    if before is not None:
        where.append(f"id < {int(before)}")
    protos = store.db.call(
        store.db.mlmd.get_artifacts,
        list_options=_options(
            limit=size + 1,
            order_by=metadata_store.OrderByField.ID,
            is_asc=False,
            filter_query=" AND ".join(where),
        ),
    )
    found = [artifact_from_proto(p, store.artifact_type(p.type_id)) for p in protos[:size]]
    return ArtifactsPage(found, found[-1].id if len(protos) > size else None)
