"""Input resolution: which artifacts feed a node.

An input channel resolves to what its producer node output in *this* run; when the producer did
not run in this run (a partial run with ``--from``/``--only``), to its newest successful outputs
that are still LIVE and on disk. When the producer's newest outcome there is SKIPPED (a ``Cond``
that did not hold), an optional input resolves to nothing and a required one skips the consumer
too: older outputs must not stand in for what the pipeline decided not to make.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mlpipe.errors import ComponentError
from mlpipe.io.uris import is_remote
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.store import NODE, RUN_ID, SKIP_REASON, MetadataStore, execution_property
from mlpipe.types.artifact import LIVE, Artifact
from mlpipe.types.registry import resolve_type


def successful_executions(store: MetadataStore, node_context: Any) -> list[Any]:
    """COMPLETE and CACHED executions of a node, newest first."""
    return _successful(store.executions_in_context(node_context))


def _successful(executions: list[Any]) -> list[Any]:
    from ml_metadata.proto import metadata_store_pb2 as pb

    done = (pb.Execution.COMPLETE, pb.Execution.CACHED)
    return sorted((e for e in executions if e.last_known_state in done), key=lambda e: e.id, reverse=True)


class UpstreamSkipped(Exception):
    """A node this one reads from was skipped (its newest outcome); the message says which and why."""


def producer_executions(store: MetadataStore, ir: PipelineIR, producer: str, run_id: str) -> list[Any]:
    """The producer's successful executions to read outputs from: this run's, else all, newest first.

    Raises UpstreamSkipped when the producer's newest outcome — in this run, or when it did not
    run in this run, its newest anywhere — is a skip: a later retry in the same run that completes
    counts, and a partial run does not read outputs the last full run decided not to make.
    """
    context = store.context(NODE, f"{ir.name}.{producer}", create=False)
    if context is None:
        return []
    executions = store.executions_in_context(context)
    successful = _successful(executions)
    decided = successful + [e for e in executions if execution_property(e, SKIP_REASON) is not None]
    in_run = [e for e in decided if execution_property(e, RUN_ID) == run_id]
    newest = max(in_run or decided, key=lambda e: e.id, default=None)
    if newest is not None and execution_property(newest, SKIP_REASON) is not None:
        where = "" if in_run else f" in run {execution_property(newest, RUN_ID)}"
        raise UpstreamSkipped(
            f"node '{producer}' was skipped{where} ({execution_property(newest, SKIP_REASON)})"
        )
    in_run_ids = {e.id for e in in_run}
    return [e for e in successful if e.id in in_run_ids] or successful


def artifacts_available(artifacts: list[Artifact]) -> bool:
    """LIVE, and (on a local root) still on disk. In a bucket the MLMD state is trusted: this runs
    under the store's lock, where a listing per artifact would stall every other launcher (and their
    lease renewals); a LIVE artifact whose objects were deleted fails when a node localizes it."""
    return all(a.state == LIVE and (is_remote(a.uri) or os.path.exists(a.uri)) for a in artifacts)


def resolve_inputs(
    store: MetadataStore,
    ir: PipelineIR,
    node: NodeIR,
    run_id: str,
    optional: set[str] | frozenset[str] = frozenset(),
    produced: Mapping[str, Mapping[str, list[Artifact]]] | None = None,
) -> dict[str, list[Artifact]]:
    """Artifacts per input key. An ``optional`` input may resolve to none (e.g. from a Resolver that
    found no blessed model yet, or a skipped producer); a required one must resolve to at least one,
    and raises UpstreamSkipped when its producer was skipped. ``produced`` holds
    what upstream nodes will output in a run that is only planned (their cached outputs), by node
    id: those inputs are taken from it."""
    resolved: dict[str, list[Artifact]] = {}
    for key, wire in node.inputs.items():
        if produced is not None and wire.producer in produced:
            resolved[key] = list(produced[wire.producer].get(wire.key, []))
            if not resolved[key] and key not in optional:
                raise _unavailable(node, key, wire.key, wire.producer)
            continue
        try:
            executions = producer_executions(store, ir, wire.producer, run_id)
        except UpstreamSkipped as skipped:
            if key in optional:
                resolved[key] = []
                continue
            raise UpstreamSkipped(f"input '{key}': {skipped}") from None
        for execution in executions:
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
