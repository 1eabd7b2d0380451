"""KubeflowDagRunner: a pipeline as a Kubeflow Pipelines v2 spec, compiled by the real kfp compiler.

One KFP task per mlpipe node, ordered with ``.after()`` from the IR's ``upstream``. Every task runs
the node entry point (:mod:`mlpipe.orchestration.entrypoint`) and nothing else, so caching, MLMD
records and failure handling are those of the launcher, as on every other runner. KFP's own cache
is switched off: it keys on task inputs only and would skip a node whose upstream artifacts or
module file changed; mlpipe's cache checks both through MLMD.

The run id is KFP's run UUID (``dsl.PIPELINE_JOB_ID_PLACEHOLDER``), resolved at run time, so all
tasks of one KFP run are one mlpipe run and ``mlpipe show <KFP run id>`` finds it.

Tasks are lightweight Python components (``@dsl.component``), not container components: KFP
ships the function's source in the spec and runs it in ``base_image``, and ``kfp.local``'s
SubprocessRunner can run the same spec on a laptop or in CI.

No ``from __future__ import annotations`` here: kfp reads the task function's annotations as
types, and string annotations make it reject ``str`` as an unknown artifact type.
"""

import json
import logging
import os
from collections.abc import Mapping

from kfp import compiler, dsl
from kfp.dsl.graph_component import GraphComponent
from kfp.dsl.python_component import PythonComponent

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR

log = logging.getLogger("mlpipe.runner.kubeflow")


def run_mlpipe_node(node_id: str, run_id: str, ir_json: str, ir_path: str) -> None:
    """Runs one node through the entry point (see ``KubeflowDagRunner._node_component``)."""
    import os
    import tempfile

    from mlpipe.orchestration.entrypoint import main

    with tempfile.TemporaryDirectory(prefix="mlpipe-ir-") as tmp:
        if not ir_path:
            ir_path = os.path.join(tmp, "ir.json")
            with open(ir_path, "w") as f:
                f.write(ir_json)
        code = main(["--ir", ir_path, "--node", node_id, "--run-id", run_id])
    if code:
        raise SystemExit(code)


class KubeflowDagRunner:
    """Compiles pipelines to KFP v2 YAML whose tasks run mlpipe nodes in ``image``.

    ``image`` must contain mlpipe, kfp and the user's code at the paths the IR records (component
    source files, module files); the pipeline root must be a volume every task sees. ``env`` sets
    variables on every task, e.g. ``MLPIPE_METADATA=mysql://...`` so all pods share one store.
    ``retries`` is KFP's per-task retry count, for transient failures (a preempted pod, a dropped
    database connection); a retry re-executes only that node, upstream outputs are already published.
    ``ir_path_in_container`` makes tasks read the IR from that file in the image instead of from
    the ``mlpipe_ir`` pipeline parameter, for pipelines whose IR is built into the image.
    """

    def __init__(
        self,
        image: str = "mlpipe:latest",
        ir_path_in_container: str | None = None,
        env: Mapping[str, str] | None = None,
        retries: int = 0,
    ):
        if retries < 0:
            raise DefinitionError(f"retries must be >= 0, got {retries}")
        self.image = image
        self.ir_path_in_container = ir_path_in_container
        self.env = dict(env or {})
        self.retries = retries

    def build(self, pipeline: Pipeline | PipelineIR) -> GraphComponent:
        """The KFP pipeline (what ``@dsl.pipeline`` returns): compile it, or call it under ``kfp.local``.

        The IR is the default of one pipeline parameter rather than a constant of each task: a
        constant would repeat it once per node in the spec and in the Argo workflow KFP makes of
        it, and Argo limits a workflow's size.
        """
        ir = pipeline.compile() if isinstance(pipeline, Pipeline) else pipeline
        components = {n.id: self._node_component(n.id) for n in ir.nodes}
        embedded_ir = "" if self.ir_path_in_container else _ir_parameter_value(ir)

        def graph(mlpipe_ir: str = embedded_ir) -> None:
            tasks: dict[str, dsl.PipelineTask] = {}
            for node in ir.nodes:
                task = components[node.id](
                    node_id=node.id,
                    run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                    ir_json=mlpipe_ir,
                    ir_path=self.ir_path_in_container or "",
                )
                task.set_display_name(node.id)
                task.set_caching_options(False)
                if self.retries:
                    task.set_retry(num_retries=self.retries)
                for name, value in self.env.items():
                    task.set_env_variable(name, value)
                for upstream in node.upstream:
                    task.after(tasks[upstream])
                tasks[node.id] = task

        # kfp turns the name into a KFP one itself (four_nodes -> four-nodes)
        return dsl.pipeline(name=ir.name, description=f"mlpipe pipeline '{ir.name}'")(graph)

    def compile(self, pipeline: Pipeline | PipelineIR, output_yaml: str | os.PathLike[str]) -> str:
        """Writes the KFP pipeline spec to ``output_yaml`` (kfp writes YAML only) and returns its path."""
        path = os.fspath(output_yaml)
        if not path.endswith((".yaml", ".yml")):
            raise DefinitionError(f"KFP pipeline spec must be a .yaml file, got {path}")
        ir = pipeline.compile() if isinstance(pipeline, Pipeline) else pipeline
        if ir.metadata.get("kind") == "sqlite" and "MLPIPE_METADATA" not in self.env:
            log.warning(
                "pipeline '%s' records to SQLite at %s, which pods on other hosts cannot share; set "
                "MLPIPE_METADATA=mysql://user@host:3306/db on the tasks: KubeflowDagRunner(env=...) or "
                "mlpipe compile --target kubeflow --env (docs/kubeflow.md)",
                ir.name,
                ir.metadata.get("path"),
            )
        compiler.Compiler().compile(self.build(ir), package_path=path)
        log.info("wrote Kubeflow pipeline spec %s (image %s)", path, self.image)
        return path

    def _node_component(self, node_id: str) -> PythonComponent:
        """``run_mlpipe_node`` as a lightweight component named after the node.

        The name makes KFP's task, pod and UI box say ``apply-module``, not ``run-mlpipe-node-3``.
        KFP copies the function's source into the spec, so it imports what it uses (and keeps its
        docstring short: it is repeated per node). It calls the entry point in its own process
        rather than a child ``python -m``: the task is already a fresh interpreter, and a second
        one would add an interpreter start and mlpipe import to every node. The entry point prints
        the component's error to stderr (the task log) and returns 1; ``SystemExit`` makes that the
        task's exit code, with no wrapper traceback. ``install_kfp_package=False``: the image has
        kfp from requirements.lock, so a pod never pip-installs at start (no network, no drift).
        """
        base = dsl.component(run_mlpipe_node, base_image=self.image, install_kfp_package=False)
        base.component_spec.name = node_id
        return base


def compile_for_kubeflow(
    pipeline: str | os.PathLike[str] | Pipeline,
    output_yaml: str | os.PathLike[str],
    image: str = "mlpipe:latest",
    env: Mapping[str, str] | None = None,
    retries: int = 0,
) -> str:
    """What ``mlpipe compile --target kubeflow FILE -o x.yaml [--image IMG] [--env K=V ...]`` calls."""
    if not isinstance(pipeline, Pipeline):
        from mlpipe.dsl.loader import load_pipeline

        pipeline = load_pipeline(pipeline)
    return KubeflowDagRunner(image=image, env=env, retries=retries).compile(pipeline, output_yaml)


def _ir_parameter_value(ir: PipelineIR) -> str:
    """The IR as the ``mlpipe_ir`` default, without a MySQL password: anyone who can see the pipeline
    in KFP's UI can read the spec. Pods take the password from ``MLPIPE_MYSQL_PASSWORD`` instead."""
    return json.dumps(ir.without_secrets().to_dict(), separators=(",", ":"))
