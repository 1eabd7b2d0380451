"""The launcher runs ONE node: resolve inputs, check the cache, execute in staging, publish.

Every runner calls :func:`launch_node`, so caching, MLMD records and failure handling are the
same on all of them. Guarantees:

* Nothing half-written is visible: executors write into ``<root>/<node>/.staging/<execution_id>``;
  on success each output is renamed to ``<root>/<node>/<key>/<execution_id>`` and, in one MLMD
  transaction, the artifacts become LIVE and the execution COMPLETE. With the root in a bucket
  the executor reads local copies of its inputs and writes to local scratch, and the outputs are
  uploaded to the same per-execution prefixes before that transaction (:mod:`mlpipe.io.artifact_files`).
* On failure the execution is FAILED, its artifacts ABANDONED, its directories removed, and a
  ComponentError names the node, the cause and the log file.
* A process killed mid-execution leaves a RUNNING execution whose PENDING artifacts no query
  returns; once its lease runs out (at once on its own host, where the dead pid shows), the next
  launch of that node on any host marks it FAILED and removes its files (:mod:`.leases`).
* Single flight: a launch whose cache key matches an execution still RUNNING under a live owner
  waits for it and reuses its outputs, so identical runs started together execute each node once.
  The lookup and the record of what it found are one transaction of the store (across processes:
  an ``flock`` for SQLite, an advisory lock for MySQL).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from mlpipe import library_patches
from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.resolver import Resolver
from mlpipe.errors import ComponentError, MetadataError, ValidationFailure
from mlpipe.io import artifact_files
from mlpipe.io.uris import is_remote, join
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.config import MetadataConfig, from_environment
from mlpipe.metadata.store import (
    CACHE_KEY,
    CACHE_KEY_PARTS,
    CACHE_MISS,
    CACHED_FROM,
    ERROR,
    HOST,
    LEASE_UNTIL,
    LOG_PATH,
    NODE_DIR,
    NODE_ID,
    PID,
    PIPELINE_NAME,
    RUN_ID,
    SKIP_REASON,
    Contexts,
    MetadataStore,
    execution_property,
)
from mlpipe.orchestration.cache import cache_key, cache_miss_reason, find_cached_outputs, module_file_paths
from mlpipe.orchestration.component_loader import load_component_class
from mlpipe.orchestration.conditions import unmet_condition
from mlpipe.orchestration.execution_log import capture_to, tell_user
from mlpipe.orchestration.heap import survivors_frozen
from mlpipe.orchestration.inputs import UpstreamSkipped, resolve_inputs
from mlpipe.orchestration.leases import Heartbeat, lease_end, owner_gone
from mlpipe.orchestration.resolvers import STRATEGY_FUNCTIONS
from mlpipe.types.artifact import ABANDONED, Artifact
from mlpipe.types.registry import resolve_type

log = logging.getLogger("mlpipe.launcher")

COMPLETE, CACHED, FAILED, SKIPPED = "COMPLETE", "CACHED", "FAILED", "SKIPPED"
TWIN_POLL_SECONDS = 0.5


@dataclass
class NodeResult:
    node_id: str
    state: str  # COMPLETE | CACHED | SKIPPED
    execution_id: int
    seconds: float
    executor_seconds: float = 0.0
    outputs: dict[str, list[Artifact]] = field(default_factory=dict)
    log_path: str | None = None
    # why the node executed instead of reusing outputs; None when CACHED and for resolver nodes
    cache_miss: str | None = None
    skip_reason: str | None = None  # why a SKIPPED node did not run (a Cond that did not hold)

    @property
    def why(self) -> str | None:
        """Why it was skipped, or why it executed."""
        return self.skip_reason or self.cache_miss


def output_classes(node: NodeIR) -> dict[str, type[Artifact]]:
    """The node's output artifact classes by key, to read its recorded outputs as what they are."""
    return {k: resolve_type(t) for k, t in node.outputs.items()}


def store_config(ir: PipelineIR) -> MetadataConfig:
    """The pipeline's store; ``MLPIPE_METADATA`` (and ``MLPIPE_MYSQL_PASSWORD``) override the IR."""
    config = from_environment(MetadataConfig.from_dict(ir.metadata))
    assert config is not None
    return config


def open_store(ir: PipelineIR) -> MetadataStore:
    return MetadataStore(store_config(ir))


def launch_node(
    ir: PipelineIR,
    node_id: str,
    run_id: str,
    store: MetadataStore,
    component_class: type[Component] | None = None,
    enable_cache: bool | None = None,
) -> NodeResult:
    """Run node ``node_id`` of ``ir`` as part of run ``run_id``; raise ComponentError on failure."""
    started = time.perf_counter()
    node = ir.node(node_id)
    cls = component_class or load_component_class(ir, node)
    contexts = store.contexts_for(ir.name, run_id, node.id)
    type_name = f"{cls.__module__}.{cls.__qualname__}"
    _clean_up_dead_executions(store, contexts, ir.root, node.id)
    optional = {k for k, spec in cls.SPEC.inputs.items() if spec.optional}
    try:
        skip_reason = unmet_condition(store, ir, node, run_id)
        if skip_reason is None and issubclass(cls, Resolver):
            return _resolve(ir, node, run_id, store, contexts, type_name, started)
        if skip_reason is None:
            inputs = resolve_inputs(store, ir, node, run_id, optional)
    except UpstreamSkipped as e:
        skip_reason = str(e)
    if skip_reason is not None:
        return _skip(ir, node, run_id, store, contexts, type_name, skip_reason, started)
    key = cache_key(cls, node, inputs)
    properties: dict[str, Any] = {
        **node.parameters,
        CACHE_KEY: key.digest,
        CACHE_KEY_PARTS: key.parts,
        NODE_ID: node.id,
        RUN_ID: run_id,
        PIPELINE_NAME: ir.name,
    }
    use_cache = ir.enable_cache if enable_cache is None else enable_cache
    if not use_cache:
        properties[CACHE_MISS] = "caching is off"
        execution, outputs = _start(ir, node, store, contexts, inputs, properties, type_name)
    while use_cache:
        with store.db.transaction():  # no other writer between the lookup and recording what it found
            earlier = store.executions_in_context(contexts.node)
            hit = find_cached_outputs(store, earlier, key, output_classes(node))
            if hit is not None:
                reused, cached_outputs = hit
                properties[CACHED_FROM] = reused
                execution_id = store.record_execution(
                    type_name, contexts, inputs, cached_outputs, properties, "CACHED"
                )
                log.info("node %s: cached (execution %d reuses execution %d)", node.id, execution_id, reused)
                return NodeResult(
                    node.id, CACHED, execution_id, time.perf_counter() - started, outputs=cached_outputs
                )
            twin = _running_twin(earlier, key.digest)
            if twin is None:
                properties[CACHE_MISS] = cache_miss_reason(earlier, key)
                execution, outputs = _start(ir, node, store, contexts, inputs, properties, type_name)
                break
        _wait_for_twin(store, node.id, twin)
        _clean_up_dead_executions(store, contexts, ir.root, node.id)
    log.info("node %s: executing: %s", node.id, properties[CACHE_MISS])
    with survivors_frozen(), library_patches.run_scope():
        return _execute(
            ir, node.id, cls, run_id, store, contexts, inputs, properties, execution, outputs, started
        )


def _start(
    ir: PipelineIR, node: NodeIR, store: MetadataStore, contexts: Contexts, inputs: dict[str, list[Artifact]],
    properties: dict[str, Any], type_name: str,
) -> tuple[Any, dict[str, Artifact]]:  # fmt: skip
    """Records the execution RUNNING, with a lease, and its outputs PENDING."""
    outputs = {k: resolve_type(t)() for k, t in node.outputs.items()}
    recorded = {**properties, NODE_DIR: join(ir.root, node.id), LEASE_UNTIL: lease_end()}
    return store.start_execution(type_name, contexts, inputs, outputs, recorded), outputs


def _running_twin(earlier: list[Any], digest: str) -> Any | None:
    """A RUNNING execution with the same cache key whose owner is alive: its outputs will be ours."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    for execution in earlier:
        if (
            execution.last_known_state == pb.Execution.RUNNING
            and execution_property(execution, CACHE_KEY) == digest
            and owner_gone(execution) is None
        ):
            return execution
    return None


def _wait_for_twin(store: MetadataStore, node_id: str, twin: Any) -> None:
    """Waits while another launcher computes the very outputs this one would (single flight)."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    log.info(
        "node %s: waiting for execution %d (pid %s on %s), which is computing the same outputs",
        node_id, twin.id, execution_property(twin, PID), execution_property(twin, HOST),
    )  # fmt: skip
    while True:
        current = store.execution(twin.id)
        if current.last_known_state != pb.Execution.RUNNING or owner_gone(current) is not None:
            return
        time.sleep(TWIN_POLL_SECONDS)


def _skip(
    ir: PipelineIR, node: NodeIR, run_id: str, store: MetadataStore, contexts: Contexts, type_name: str,
    reason: str, started: float,
) -> NodeResult:  # fmt: skip
    """A CANCELED execution that says why the node did not run; no inputs, outputs or files."""
    properties = {NODE_ID: node.id, RUN_ID: run_id, PIPELINE_NAME: ir.name, SKIP_REASON: reason}
    execution_id = store.record_execution(type_name, contexts, {}, {}, properties, "CANCELED")
    log.info("node %s: skipped: %s", node.id, reason)
    return NodeResult(node.id, SKIPPED, execution_id, time.perf_counter() - started, skip_reason=reason)


def _resolve(
    ir: PipelineIR,
    node: NodeIR,
    run_id: str,
    store: MetadataStore,
    contexts: Contexts,
    type_name: str,
    started: float,
) -> NodeResult:
    """A resolver's execution links (OUTPUT events) the artifacts its strategy picks; no files."""
    resolved = STRATEGY_FUNCTIONS[node.parameters["strategy"]](store, ir, node)
    properties = {NODE_ID: node.id, RUN_ID: run_id, PIPELINE_NAME: ir.name, **node.parameters}
    execution_id = store.record_execution(type_name, contexts, {}, resolved, properties, "COMPLETE")
    found = ", ".join(f"{k}={[a.id for a in v]}" for k, v in resolved.items())
    log.info("node %s: resolved %s (execution %d)", node.id, found, execution_id)
    return NodeResult(node.id, COMPLETE, execution_id, time.perf_counter() - started, outputs=resolved)


def _execute(
    ir: PipelineIR, node_id: str, cls: type[Component], run_id: str, store: MetadataStore, contexts: Contexts,
    inputs: dict[str, list[Artifact]], properties: dict[str, Any], execution: Any, outputs: dict[str, Artifact],
    started: float,
) -> NodeResult:  # fmt: skip
    node = ir.node(node_id)
    node_dir = join(ir.root, node.id)
    execution_id = execution.id
    staging = artifact_files.staging_dir(node_dir, execution_id)
    log_dir = join(node_dir, ".system", str(execution_id))
    # on a bucket the log is written locally and uploaded with the outputs
    local_log_dir = os.path.join(staging, ".system") if is_remote(node_dir) else log_dir
    log_path = join(log_dir, "executor.log")
    final_uris = {k: join(node_dir, k, str(execution_id)) for k in node.outputs}
    placed: list[str] = []  # final locations this execution began to write
    heartbeat = contextlib.ExitStack()
    try:
        # the lease is renewed from here to the publish: downloads and uploads are work too
        heartbeat.enter_context(Heartbeat(store, execution_id))
        for uri in final_uris.values():
            if artifact_files.exists(uri):
                raise MetadataError(
                    f"{uri} already exists but execution {execution_id} is new: this pipeline root was used with "
                    f"another metadata store ({store.config.describe()}); use a new root or the old store"
                )
        os.makedirs(local_log_dir, exist_ok=True)
        for k, a in outputs.items():
            a.uri = os.path.join(staging, k)
            os.makedirs(a.uri, exist_ok=True)
        ctx = ExecutionContext(
            node_id=node.id,
            pipeline_name=ir.name,
            run_id=run_id,
            execution_id=execution_id,
            inputs=_readable(inputs),
            outputs=outputs,
            parameters=_readable_parameters(cls, node),
            tmp_dir=os.path.join(staging, ".tmp"),
            beam_pipeline_args=list(ir.beam_pipeline_args),
            log=logging.getLogger(f"mlpipe.executor.{node.id}"),
            node_dir=node_dir,
            tell_user=tell_user,
        )
        os.makedirs(ctx.tmp_dir, exist_ok=True)
        exec_started = time.perf_counter()
        verdict: ValidationFailure | None = None
        with capture_to(os.path.join(local_log_dir, "executor.log"), ctx.log) as log_file:
            try:
                cls.execute(ctx)
            except ValidationFailure as e:  # named where its outputs will be, not the staging dir
                verdict = ValidationFailure(_with_final_uris(str(e), outputs, final_uris))
                log_file.write(f"{verdict}\n")
            except BaseException:
                log_file.write(traceback.format_exc())
                raise
        executor_seconds = time.perf_counter() - exec_started
        for k, a in outputs.items():
            placed.append(final_uris[k])
            artifact_files.put_in_place(a.uri, final_uris[k])
            a.uri = final_uris[k]
        if local_log_dir != log_dir:
            artifact_files.put_in_place(local_log_dir, log_dir)
        heartbeat.close()
        final = {LOG_PATH: log_path, **({ERROR: str(verdict)[:4000]} if verdict else {})}
        store.publish_execution(execution, contexts, outputs, final, failed=verdict is not None)
    except BaseException as e:
        heartbeat.close()
        for uri in placed:  # PENDING outputs: nothing reads them, however much got written
            artifact_files.remove(uri)
        if local_log_dir != log_dir and os.path.isdir(local_log_dir):
            try:
                artifact_files.put_in_place(local_log_dir, log_dir)
            except Exception:  # the bucket may be what failed: the error below still names the node
                log.warning("node %s: could not upload its log to %s", node.id, log_dir, exc_info=True)
        for k, a in outputs.items():
            a.uri = final_uris[k]
        try:
            error = f"{type(e).__name__}: {e}"[:4000]
            store.fail_execution(execution, contexts, outputs, {LOG_PATH: log_path, ERROR: error})
        finally:
            _remove_staging(staging)
        if isinstance(e, ComponentError) or not isinstance(e, Exception):
            raise
        raise ComponentError(node.id, e, log_path) from e
    _remove_staging(staging)
    if verdict is not None:
        raise ComponentError(node.id, str(verdict), log_path) from verdict
    seconds = time.perf_counter() - started
    log.info("node %s: complete in %.2fs (execution %d)", node.id, seconds, execution_id)
    return NodeResult(
        node.id,
        COMPLETE,
        execution_id,
        seconds,
        executor_seconds,
        {k: [a] for k, a in outputs.items()},
        log_path,
        properties[CACHE_MISS],
    )


def _readable(inputs: dict[str, list[Artifact]]) -> dict[str, list[Artifact]]:
    """The inputs as the executor sees them: artifacts in a bucket point at local copies."""
    readable: dict[str, list[Artifact]] = {}
    for key, artifacts in inputs.items():
        readable[key] = []
        for artifact in artifacts:
            if is_remote(artifact.uri):
                artifact = copy.copy(artifact)
                artifact.uri = artifact_files.readable_path(artifact.uri)
            readable[key].append(artifact)
    return readable


def _readable_parameters(cls: type[Component], node: NodeIR) -> dict[str, Any]:
    """The parameters as the executor sees them: a module file in a bucket is a local copy."""
    parameters = dict(node.parameters)
    for name, path in module_file_paths(cls, node).items():
        if is_remote(str(parameters[name])):
            parameters[name] = path
    return parameters


def _with_final_uris(message: str, staged: dict[str, Artifact], final_uris: dict[str, str]) -> str:
    for key, artifact in staged.items():
        message = message.replace(artifact.uri, final_uris[key])
    return message


def _remove_staging(staging: str) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if os.path.basename(os.path.dirname(staging)) != ".staging":
        return  # a bucket's scratch dir: its parent is shared by every launcher on the machine
    try:
        os.rmdir(os.path.dirname(staging))  # the node's .staging dir, once no execution uses it
    except OSError:
        pass


def _clean_up_dead_executions(store: MetadataStore, contexts: Contexts, root: str, node_id: str) -> None:
    """Take over RUNNING executions of this node whose owner is gone (see :mod:`.leases`): mark them
    FAILED and remove their files, whichever host they ran on."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    for execution in store.executions_in_context(contexts.node):
        if execution.last_known_state != pb.Execution.RUNNING:
            continue
        reason = owner_gone(execution)
        if reason is None:
            continue
        outputs = store.output_artifacts(execution.id)
        artifacts = [a for arts in outputs.values() for a in arts]
        for key in outputs:  # a kill between rename (or upload) and publish leaves final files behind
            artifact_files.remove(join(root, node_id, key, str(execution.id)))
        artifact_files.remove_staging(join(root, node_id), execution.id)
        store.mark_artifacts(artifacts, ABANDONED)
        store.mark_execution_failed(execution, reason)
        log.warning(
            "node %s: execution %d was left RUNNING: %s; marked FAILED", node_id, execution.id, reason
        )
