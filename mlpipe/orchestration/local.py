"""LocalDagRunner: runs a pipeline in this process, independent nodes in parallel threads."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import secrets
import time
from collections.abc import Iterable

from mlpipe import library_patches
from mlpipe.dsl.component import Component
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import ComponentError, DefinitionError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.cache import FIRST_EXECUTION
from mlpipe.orchestration.heap import survivors_frozen
from mlpipe.orchestration.launcher import launch_node, open_store
from mlpipe.orchestration.progress import ProgressDisplay
from mlpipe.orchestration.run_result import RunError, RunResult

log = logging.getLogger("mlpipe.runner.local")


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def select_nodes(ir: PipelineIR, from_nodes: Iterable[str] | None, only: Iterable[str] | None) -> list[str]:
    """The node ids a partial run executes: ``only`` exactly those, ``from_nodes`` those and downstream."""
    only, from_nodes = list(only or []), list(from_nodes or [])
    for n in only + from_nodes:
        ir.node(n)  # raises a DefinitionError naming the known nodes
    if only and from_nodes:
        raise DefinitionError("use either from_nodes (--from) or only (--only), not both")
    if only:
        chosen = set(only)
    elif from_nodes:
        chosen = ir.downstream_closure(set(from_nodes))
    else:
        chosen = {n.id for n in ir.nodes}
    return [n.id for n in ir.nodes if n.id in chosen]


def compile_with_classes(pipeline: Pipeline | PipelineIR) -> tuple[PipelineIR, dict[str, type[Component]]]:
    """The IR, and the component class of each node when given a Pipeline object (a class defined
    in a notebook or script cannot be imported again by name); for an IR, classes load by name."""
    if isinstance(pipeline, Pipeline):
        return pipeline.compile(), {c.id: type(c) for c in pipeline.components}
    return pipeline, {}


class LocalDagRunner:
    """Runs nodes in topological order; independent ones in parallel (``max_workers``, default cores).

    After a failure no new node starts; running ones finish. ``run`` raises RunError naming what
    failed and what did not run; a rerun reuses every success from the cache.
    """

    def __init__(self, max_workers: int | None = None, progress: bool = True):
        self.max_workers = max_workers or os.cpu_count() or 1
        self.progress = progress

    def run(
        self,
        pipeline: Pipeline | PipelineIR,
        run_id: str | None = None,
        from_nodes: Iterable[str] | None = None,
        only: Iterable[str] | None = None,
        enable_cache: bool | None = None,
        store: MetadataStore | None = None,
    ) -> RunResult:
        ir, classes = compile_with_classes(pipeline)
        selected = select_nodes(ir, from_nodes, only)
        result = RunResult(ir.name, run_id or new_run_id())
        own_store = store is None
        store = store or open_store(ir)
        display = ProgressDisplay(selected) if self.progress else None
        started = time.perf_counter()
        try:
            # one scope for the run: nodes reuse what earlier nodes imported, and the same library patches
            with survivors_frozen(), library_patches.run_scope():
                self._schedule(ir, selected, classes, result, store, enable_cache, display)
        finally:
            result.seconds = time.perf_counter() - started
            if display:
                display.close(result)
            if own_store:
                store.close()
        if not result.succeeded:
            raise RunError(result, "the same command (completed nodes come from the cache)")
        return result

    def _schedule(
        self, ir: PipelineIR, selected: list[str], classes: dict[str, type[Component]], result: RunResult,
        store: MetadataStore, enable_cache: bool | None, display: ProgressDisplay | None,
    ) -> None:  # fmt: skip
        pending = list(selected)
        chosen = set(selected)
        deps = {n: {u for u in ir.node(n).upstream if u in chosen} for n in selected}
        running: dict[cf.Future, str] = {}
        with cf.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="mlpipe-node") as pool:
            while pending or running:
                if not result.failed:
                    for n in [n for n in pending if deps[n] <= set(result.results)]:
                        pending.remove(n)
                        if display:
                            display.node_started(n)
                        fut = pool.submit(
                            launch_node, ir, n, result.run_id, store, classes.get(n), enable_cache
                        )
                        running[fut] = n
                if not running:
                    break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    n = running.pop(fut)
                    try:
                        node_result = fut.result()
                    except ComponentError as e:
                        result.failed[n] = e
                        if display:
                            display.node_failed(n, e)
                    except (
                        Exception
                    ) as e:  # a bug outside the executor (MLMD, filesystem): still report per node
                        result.failed[n] = ComponentError(n, e)
                        if display:
                            display.node_failed(n, e)
                    else:
                        result.results[n] = node_result
                        if display:
                            why = node_result.why
                            shown = why if why != FIRST_EXECUTION else None  # every node of a first run
                            display.node_finished(n, node_result.state, node_result.seconds, shown)
        result.not_run = pending
