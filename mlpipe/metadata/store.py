"""The ML Metadata store as the launcher and queries use it: TFX-compatible records.

Layout (as TFX writes it): context types ``pipeline``, ``pipeline_run`` and ``node`` (named
``<pipeline>.<node_id>``); one execution type per component class; executions RUNNING then
COMPLETE / FAILED / CACHED; output artifacts PENDING until published LIVE (ABANDONED on failure);
INPUT/OUTPUT events whose path is ``[key, index]``. mlpipe's own bookkeeping lives in execution
custom properties named ``__...__``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.metadata.config import MetadataConfig
from mlpipe.metadata.connection import LockedStore
from mlpipe.metadata.convert import artifact_from_proto, artifact_to_proto, get_value, set_value
from mlpipe.types.artifact import ABANDONED, LIVE, PENDING, Artifact

PIPELINE, PIPELINE_RUN, NODE = "pipeline", "pipeline_run", "node"

# Execution custom properties written by mlpipe.
CACHE_KEY, NODE_ID, RUN_ID, PIPELINE_NAME = "__cache_key__", "__node_id__", "__run_id__", "__pipeline_name__"
LOG_PATH, ERROR, PID, HOST = "__log_path__", "__error__", "__pid__", "__host__"
LEASE_UNTIL = "__lease_until__"  # a RUNNING execution's owner renews this while it works
NODE_DIR = "__node_dir__"  # <root>/<node>: where a node keeps state across its executions
# The parts of the cache key (JSON), and why an execution ran (a cache miss) or which one it reused.
CACHE_KEY_PARTS, CACHE_MISS, CACHED_FROM = "__cache_key_parts__", "__cache_miss__", "__cached_from__"
SKIP_REASON = "__skipped__"  # why a node did not run (a Cond that did not hold); its execution is CANCELED


@dataclass(frozen=True)
class Contexts:
    """The three contexts an execution belongs to."""

    pipeline: Any
    run: Any
    node: Any

    def all(self) -> list[Any]:
        return [self.pipeline, self.run, self.node]


class MetadataStore:
    """High-level, TFX-compatible recording and lookup over one MLMD database."""

    # how the store is opened; the dashboard's read-only store opens it another way
    connection_class: type[LockedStore] = LockedStore

    def __init__(self, config: MetadataConfig):
        from ml_metadata.proto import metadata_store_pb2

        self._pb = metadata_store_pb2
        self.config = config
        self.db = self.connection_class(config)
        self._type_ids: dict[tuple[str, str], int] = {}
        self._types_by_id: dict[int, Any] = {}

    def close(self) -> None:
        self.db.close()

    # --- types ---------------------------------------------------------------------------------
    def artifact_type_id(self, cls: type[Artifact]) -> int:
        t = self._pb.ArtifactType(name=cls.TYPE_NAME)
        for name, ptype in cls.PROPERTIES.items():
            t.properties[name] = self._pb.PropertyType.Value(ptype)
        return self._type_id(t, self.db.mlmd.put_artifact_type)

    def execution_type_id(self, name: str) -> int:
        return self._type_id(self._pb.ExecutionType(name=name), self.db.mlmd.put_execution_type)

    def _context_type_id(self, name: str) -> int:
        return self._type_id(self._pb.ContextType(name=name), self.db.mlmd.put_context_type)

    def _type_id(self, type_proto: Any, put: Any) -> int:
        """Register a type once per store object (MLMD accepts re-registration; it costs a write)."""
        key = (type(type_proto).__name__, type_proto.name)
        if key not in self._type_ids:
            self._type_ids[key] = self.db.call(put, type_proto, can_add_fields=True, can_omit_fields=True)
        return self._type_ids[key]

    def artifact_type(self, type_id: int) -> Any:
        if type_id not in self._types_by_id:
            (t,) = self.db.call(self.db.mlmd.get_artifact_types_by_id, [type_id])
            self._types_by_id[type_id] = t
        return self._types_by_id[type_id]

    # --- contexts ------------------------------------------------------------------------------
    def context(
        self, type_name: str, name: str, create: bool = True, properties: Mapping[str, Any] | None = None
    ) -> Any | None:
        from ml_metadata import errors

        existing = self.db.call(self.db.mlmd.get_context_by_type_and_name, type_name, name)
        if existing is not None or not create:
            return existing
        ctx = self._pb.Context(type_id=self._context_type_id(type_name), name=name)
        for k, v in (properties or {}).items():
            set_value(ctx.custom_properties[k], v)
        try:
            [ctx.id] = self.db.call(self.db.mlmd.put_contexts, [ctx])
        except errors.AlreadyExistsError:  # another process created it between our get and put
            return self.db.call(self.db.mlmd.get_context_by_type_and_name, type_name, name)
        return ctx

    def contexts_for(self, pipeline_name: str, run_id: str, node_id: str) -> Contexts:
        return Contexts(
            pipeline=self.context(PIPELINE, pipeline_name),
            run=self.context(PIPELINE_RUN, run_id, properties={PIPELINE_NAME: pipeline_name}),
            node=self.context(NODE, f"{pipeline_name}.{node_id}"),
        )

    # --- executions ----------------------------------------------------------------------------
    def start_execution(
        self,
        type_name: str,
        contexts: Contexts,
        inputs: Mapping[str, list[Artifact]],
        outputs: Mapping[str, Artifact],
        properties: Mapping[str, Any],
    ) -> Any:
        """One transaction: a RUNNING execution, its INPUT events, and its outputs as PENDING artifacts
        with OUTPUT events. Sets the outputs' ids; their URI (which contains the execution id) is
        recorded when they are published. Returns the execution proto for publish/fail."""
        execution = self._pb.Execution(
            type_id=self.execution_type_id(type_name), last_known_state=self._pb.Execution.RUNNING
        )
        for k, v in properties.items():
            set_value(execution.custom_properties[k], _property_value(v))
        set_value(execution.custom_properties[PID], os.getpid())
        set_value(execution.custom_properties[HOST], socket.gethostname())
        for a in outputs.values():
            a.state = PENDING
        input_events = self._events(inputs, self._pb.Event.INPUT)
        events = input_events + self._events({k: [a] for k, a in outputs.items()}, self._pb.Event.OUTPUT)
        execution.id, artifact_ids, _ = self.db.call(
            self.db.mlmd.put_execution, execution, events, contexts.all(), reuse_context_if_already_exist=True
        )
        for a, aid in zip(outputs.values(), artifact_ids[len(input_events) :], strict=True):
            a.id = aid
        return execution

    def publish_execution(
        self,
        execution: Any,
        contexts: Contexts,
        outputs: Mapping[str, Artifact],
        properties: Mapping[str, Any],
        failed: bool = False,
    ) -> None:
        """One transaction: outputs LIVE (with their URIs and final properties), execution COMPLETE
        (or FAILED with published outputs, when the outputs themselves report bad data)."""
        state = self._pb.Execution.FAILED if failed else self._pb.Execution.COMPLETE
        self._finish(execution, contexts, outputs, LIVE, state, properties)

    def fail_execution(
        self,
        execution: Any,
        contexts: Contexts,
        outputs: Mapping[str, Artifact],
        properties: Mapping[str, Any],
    ) -> None:
        """One transaction: outputs ABANDONED and the execution FAILED (``properties`` say why)."""
        self._finish(execution, contexts, outputs, ABANDONED, self._pb.Execution.FAILED, properties)

    def _finish(
        self, execution: Any, contexts: Contexts, outputs: Mapping[str, Artifact], state: str, exec_state: int,
        properties: Mapping[str, Any],
    ) -> None:  # fmt: skip
        execution.last_known_state = exec_state
        for k, v in properties.items():
            set_value(execution.custom_properties[k], _property_value(v))
        pairs = []
        for a in outputs.values():
            a.state = state
            pairs.append((artifact_to_proto(a, self.artifact_type_id(type(a))), None))
        self.db.call(
            self.db.mlmd.put_execution, execution, pairs, contexts.all(), reuse_context_if_already_exist=True
        )

    def record_execution(
        self,
        type_name: str,
        contexts: Contexts,
        inputs: Mapping[str, list[Artifact]],
        outputs: Mapping[str, list[Artifact]],
        properties: Mapping[str, Any],
        state: str,
    ) -> int:
        """An execution (CACHED, or a resolver's COMPLETE) linked by INPUT/OUTPUT events to existing
        artifacts: it makes no files, it only says which artifacts stand for its outputs."""
        execution = self._pb.Execution(
            type_id=self.execution_type_id(type_name), last_known_state=self._pb.Execution.State.Value(state)
        )
        for k, v in properties.items():
            set_value(execution.custom_properties[k], _property_value(v))
        events = self._events(inputs, self._pb.Event.INPUT) + self._events(outputs, self._pb.Event.OUTPUT)
        execution_id, _, _ = self.db.call(
            self.db.mlmd.put_execution, execution, events, contexts.all(), reuse_context_if_already_exist=True
        )
        return execution_id

    def _events(self, artifacts: Mapping[str, list[Artifact]], kind: int) -> list:
        """(artifact proto, event) pairs; artifacts with an id are updated in place, others created.

        MLMD allows one event per (artifact, execution, type), yet one artifact can feed two keys
        (an Evaluator's model and its baseline, when nothing changed): such an artifact gets one
        event whose path holds every ``key, index`` pair.
        """
        pairs = []
        by_id: dict[int, Any] = {}
        for key, arts in artifacts.items():
            for index, a in enumerate(arts):
                event = by_id.get(a.id) if a.id is not None else None
                if event is None:
                    event = self._pb.Event(type=kind)
                    pairs.append((artifact_to_proto(a, self.artifact_type_id(type(a))), event))
                    if a.id is not None:
                        by_id[a.id] = event
                event.path.steps.add().key = key
                event.path.steps.add().index = index
        return pairs

    # --- lookups used by the launcher ----------------------------------------------------------
    def executions_in_context(self, context: Any) -> list[Any]:
        return self.db.call(self.db.mlmd.get_executions_by_context, context.id)

    def output_artifacts(
        self, execution_id: int, classes: Mapping[str, type[Artifact]] | None = None
    ) -> dict[str, list[Artifact]]:
        """The execution's outputs by key, in event-index order (any state; callers check LIVE)."""
        events = [
            e
            for e in self.db.call(self.db.mlmd.get_events_by_execution_ids, [execution_id])
            if e.type == self._pb.Event.OUTPUT
        ]
        return self._artifacts_by_key(events, classes)

    def input_artifacts(self, execution_id: int) -> dict[str, list[Artifact]]:
        events = [
            e
            for e in self.db.call(self.db.mlmd.get_events_by_execution_ids, [execution_id])
            if e.type == self._pb.Event.INPUT
        ]
        return self._artifacts_by_key(events, None)

    def _artifacts_by_key(
        self, events: Iterable[Any], classes: Mapping[str, type[Artifact]] | None
    ) -> dict[str, list[Artifact]]:
        events = list(events)
        if not events:
            return {}
        protos = {
            a.id: a for a in self.db.call(self.db.mlmd.get_artifacts_by_id, [e.artifact_id for e in events])
        }
        keyed: dict[str, list[tuple[int, Artifact]]] = {}
        for e in events:
            proto = protos[e.artifact_id]
            steps = list(e.path.steps)
            for key_step, index_step in zip(steps[::2], steps[1::2], strict=False):
                cls = (classes or {}).get(key_step.key)
                artifact = artifact_from_proto(proto, self.artifact_type(proto.type_id), cls)
                keyed.setdefault(key_step.key, []).append((index_step.index, artifact))
        return {k: [a for _, a in sorted(v, key=lambda t: t[0])] for k, v in keyed.items()}

    def mark_artifacts(self, artifacts: Iterable[Artifact], state: str) -> None:
        """Change the state of existing artifacts (e.g. DELETED when their files are gone)."""
        protos = []
        for a in artifacts:
            a.state = state
            protos.append(artifact_to_proto(a, self.artifact_type_id(type(a))))
        if protos:
            self.db.call(self.db.mlmd.put_artifacts, protos)

    def renew_lease(self, execution_id: int, until: float) -> bool:
        """Moves a RUNNING execution's lease end to ``until`` (epoch seconds); False once it is not RUNNING."""
        with self.db.transaction():
            execution = self.execution(execution_id)
            if execution.last_known_state != self._pb.Execution.RUNNING:
                return False
            set_value(execution.custom_properties[LEASE_UNTIL], until)
            self.db.call(self.db.mlmd.put_executions, [execution])
            return True

    def execution(self, execution_id: int) -> Any:
        [execution] = self.db.call(self.db.mlmd.get_executions_by_id, [execution_id])
        return execution

    def mark_execution_failed(self, execution: Any, error: str) -> None:
        execution.last_known_state = self._pb.Execution.FAILED
        set_value(execution.custom_properties[ERROR], error)
        self.db.call(self.db.mlmd.put_executions, [execution])


def execution_property(execution: Any, name: str, default: Any = None) -> Any:
    if name in execution.custom_properties:
        return get_value(execution.custom_properties[name])
    return default


def _property_value(v: Any) -> Any:
    """``v`` as an execution property holds it: containers and None as JSON text."""
    if isinstance(v, (dict, list, tuple)) or v is None:
        return json.dumps(v, sort_keys=True)
    return v
