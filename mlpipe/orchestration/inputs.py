"""Input resolution: which artifacts feed a node.

An input channel resolves to what its producer node output in *this* run; when the producer did
not run in this run (a partial run with ``--from``/``--only``), to its newest successful outputs
that are still LIVE and on disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlpipe.errors import ComponentError
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.store import NODE, RUN_ID, MetadataStore, execution_property
from mlpipe.types.artifact import LIVE, Artifact
from mlpipe.types.registry import resolve_type


def successful_executions(store: MetadataStore, node_context: Any) -> list[Any]:
    """COMPLETE and CACHED executions of a node, newest first."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    done = (pb.Execution.COMPLETE, pb.Execution.CACHED)
    executions = [e for e in store.executions_in_context(node_context) if e.last_known_state in done]
    return sorted(executions, key=lambda e: e.id, reverse=True)


def artifacts_available(artifacts: list[Artifact]) -> bool:
    return all(a.state == LIVE and os.path.exists(a.uri) for a in artifacts)


def resolve_inputs(
    store: MetadataStore,
    ir: PipelineIR,
    node: NodeIR,
    run_id: str,
    optional: set[str] | frozenset[str] = frozenset(),
    produced: Mapping[str, Mapping[str, list[Artifact]]] | None = None,
) -> dict[str, list[Artifact]]:
    """Artifacts per input key. An ``optional`` input may resolve to none (e.g. from a Resolver that
    found no blessed model yet); a required one must resolve to at least one. ``produced`` holds
    what upstream nodes will output in a run that is only planned (their cached outputs), by node
    id: those inputs are taken from it."""
    resolved: dict[str, list[Artifact]] = {}
    for key, wire in node.inputs.items():
        if produced is not None and wire.producer in produced:
            resolved[key] = list(produced[wire.producer].get(wire.key, []))
            if not resolved[key] and key not in optional:
                raise _unavailable(node, key, wire.key, wire.producer)
            continue
        producer_context = store.context(NODE, f"{ir.name}.{wire.producer}", create=False)
        executions = successful_executions(store, producer_context) if producer_context else []
        in_run = [e for e in executions if execution_property(e, RUN_ID) == run_id]
        for execution in in_run or executions:
            outputs = store.output_artifacts(execution.id, {wire.key: resolve_type(wire.type)}).get(
                wire.key, []
            )
            if (outputs or key in optional) and artifacts_available(outputs):
                resolved[key] = outputs
                break
        else:
            raise _unavailable(node, key, wire.key, wire.producer)
    return resolved


def _unavailable(node: NodeIR, key: str, output_key: str, producer: str) -> ComponentError:
    return ComponentError(
        node.id,
        f"input '{key}' needs outputs['{output_key}'] of node '{producer}', which has no successful "
        f"execution with its files still on disk; run it first (mlpipe run ... --from {producer})",
    )
