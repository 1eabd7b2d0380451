"""BeamDagRunner: the pipeline's DAG as one Apache Beam pipeline.

Each node is a Beam step that calls the same launcher as every other runner; a node waits for its
upstream nodes through side inputs, so Beam's scheduler runs independent nodes as it sees fit.
By default the in-process FnApiRunner executes it: Beam >= 2.68's DirectRunner first tries to
download the Prism runner, which hangs or fails on an offline machine. ``--runner=...`` in the
runner's ``beam_pipeline_args`` picks another (Flink, Spark, Dataflow) — the workers then need
mlpipe and the user's code installed, and a metadata store they can reach (MySQL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import ComponentError, MlpipeError
from mlpipe.io.beam import beam_pipeline_options
from mlpipe.ir import PipelineIR
from mlpipe.orchestration.local import new_run_id, select_nodes
from mlpipe.orchestration.run_result import RunError, RunResult

log = logging.getLogger("mlpipe.runner.beam")

_stores: dict[str, Any] = {}  # one metadata store per worker process and pipeline


def _run_node(_: Any, ir_json: str, node_id: str, run_id: str, enable_cache: bool | None, *upstream) -> dict:
    """A Beam step: launch one node. The ``upstream`` side inputs (the upstream steps' results) only
    make Beam run this step after them."""
    import json

    from mlpipe.orchestration.launcher import launch_node, open_store

    ir = PipelineIR.from_dict(json.loads(ir_json))
    store = _stores.get(ir_json)
    if store is None:
        store = _stores[ir_json] = open_store(ir)
    result = launch_node(ir, node_id, run_id, store, enable_cache=enable_cache)
    return {
        "node_id": node_id,
        "state": result.state,
        "execution_id": result.execution_id,
        "seconds": result.seconds,
    }


class BeamDagRunner:
    """Runs a pipeline as one Beam pipeline; nodes run on Beam workers through the launcher."""

    def __init__(self, beam_pipeline_args: Sequence[str] | None = None):
        self.beam_pipeline_args = list(beam_pipeline_args or [])

    def run(
        self,
        pipeline: Pipeline | PipelineIR,
        run_id: str | None = None,
        from_nodes: Iterable[str] | None = None,
        only: Iterable[str] | None = None,
        enable_cache: bool | None = None,
    ) -> RunResult:
        import apache_beam as beam

        ir = pipeline.compile() if isinstance(pipeline, Pipeline) else pipeline
        selected = select_nodes(ir, from_nodes, only)
        result = RunResult(ir.name, run_id or new_run_id())
        ir_json = ir.to_json()
        started = time.perf_counter()
        step_results: list[dict] = []
        try:
            with beam.Pipeline(options=beam_pipeline_options(self.beam_pipeline_args)) as p:
                start = p | "Start" >> beam.Create([None])
                steps: dict[str, Any] = {}
                for node_id in selected:
                    # one side input per upstream step: a Flatten of several as one side input
                    # leaves FnApiRunner with bundles it never runs when upstreams depend on each other
                    after = [beam.pvalue.AsList(steps[u]) for u in ir.node(node_id).upstream if u in steps]
                    steps[node_id] = start | f"Run[{node_id}]" >> beam.Map(
                        _run_node, ir_json, node_id, result.run_id, enable_cache, *after
                    )
                _ = (
                    [steps[n] for n in selected]
                    | "Collect" >> beam.Flatten()
                    | "Record" >> beam.Map(step_results.append)
                )
        except Exception as e:  # Beam wraps the step's exception; MLMD knows what happened
            log.debug("beam pipeline failed", exc_info=True)
            _fill_from_metadata(ir, result, selected, e)
        else:
            _fill_from_metadata(ir, result, selected, None)
        result.seconds = time.perf_counter() - started
        if not result.succeeded:
            raise RunError(result, "the same BeamDagRunner.run call (completed nodes come from the cache)")
        return result


def _fill_from_metadata(
    ir: PipelineIR, result: RunResult, selected: list[str], error: Exception | None
) -> None:
    """Build the run's outcome from MLMD: Beam's own results do not survive a failed pipeline."""
    from mlpipe.metadata.queries import run_executions
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.orchestration.launcher import NodeResult, open_store

    store: MetadataStore = open_store(ir)
    try:
        executions = run_executions(store, result.run_id) if _run_exists(store, result.run_id) else []
    finally:
        store.close()
    for e in executions:
        if e.state in ("COMPLETE", "CACHED", "SKIPPED"):
            seconds = (e.updated_ms - e.created_ms) / 1000
            result.results[e.node_id] = NodeResult(
                e.node_id, e.state, e.id, seconds, outputs=e.outputs, cache_miss=e.cache_miss,
                skip_reason=e.skip_reason,
            )  # fmt: skip
        elif e.state == "FAILED":
            result.failed[e.node_id] = ComponentError(e.node_id, e.error or "failed", e.log_path)
    if error is not None and not result.failed:
        message = str(error) if isinstance(error, MlpipeError) else f"{type(error).__name__}: {error}"
        result.failed["<beam>"] = ComponentError("<beam pipeline>", message)
    result.not_run = [n for n in selected if n not in result.results and n not in result.failed]


def _run_exists(store: Any, run_id: str) -> bool:
    from mlpipe.metadata.store import PIPELINE_RUN

    return store.context(PIPELINE_RUN, run_id, create=False) is not None
