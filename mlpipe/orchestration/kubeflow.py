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
import re
from collections.abc import Mapping
from urllib.parse import urlparse

from kfp import compiler, dsl, kubernetes
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
    source files, module files) — the repository's ``Dockerfile`` builds one. The pipeline root is
    an object-store URI (``s3://``, ``gs://``) or a volume every task sees (``volumes``: PVC name →
    mount path). ``env`` sets variables on every task, e.g. ``MLPIPE_METADATA=mysql://...`` so all
    pods share one store; it is written into the spec in clear text, so secret values are refused
    there and go in ``secret_env`` instead: environment variable → ``"SECRET_NAME:KEY"`` of a
    Kubernetes Secret, which the spec names but never contains.
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
        secret_env: Mapping[str, str] | None = None,
        volumes: Mapping[str, str] | None = None,
    ):
        if retries < 0:
            raise DefinitionError(f"retries must be >= 0, got {retries}")
        self.image = image
        self.ir_path_in_container = ir_path_in_container
        self.env = check_plain_env(env or {})
        self.secret_env = {name: secret_reference(name, ref) for name, ref in (secret_env or {}).items()}
        self.volumes = dict(volumes or {})
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
                for name, (secret, key) in self.secret_env.items():
                    kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env={key: name})
                for claim, mount_path in self.volumes.items():
                    kubernetes.mount_pvc(task, pvc_name=claim, mount_path=mount_path)
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
        if ir.metadata.get("kind") == "mysql" and "MLPIPE_MYSQL_PASSWORD" not in self.secret_env:
            log.warning(
                "pipeline '%s' records to MySQL, and no task is given MLPIPE_MYSQL_PASSWORD: add it from a "
                "Kubernetes Secret with secret_env / --secret-env MLPIPE_MYSQL_PASSWORD=SECRET_NAME:KEY",
                ir.name,
            )
        if "://" not in ir.root and not any(ir.root.startswith(p) for p in self.volumes.values()):
            log.warning(
                "pipeline '%s' keeps its artifacts under the local directory %s, which pods on other hosts do "
                "not share: use an s3:// or gs:// pipeline root, or mount a volume there (volumes / --volume)",
                ir.name,
                ir.root,
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
    secret_env: Mapping[str, str] | None = None,
    volumes: Mapping[str, str] | None = None,
) -> str:
    """What ``mlpipe compile --target kubeflow FILE -o x.yaml [--image IMG] [--env K=V ...]
    [--secret-env K=SECRET:KEY ...] [--volume PVC:PATH ...]`` calls."""
    if not isinstance(pipeline, Pipeline):
        from mlpipe.dsl.loader import load_pipeline

        pipeline = load_pipeline(pipeline)
    runner = KubeflowDagRunner(image=image, env=env, retries=retries, secret_env=secret_env, volumes=volumes)
    return runner.compile(pipeline, output_yaml)


# Variables whose value is a credential by its name: the spec is readable by everyone who can see
# the pipeline in KFP's UI, so these may only come from a Secret.
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY", re.IGNORECASE)


def check_plain_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` if none of its values is a credential, else a DefinitionError naming ``secret_env``.

    A credential is a variable whose name says so (``MLPIPE_MYSQL_PASSWORD``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` …) or a URI with a password in it (a
    ``mysql://user:pw@host/db`` metadata URI). ``GOOGLE_APPLICATION_CREDENTIALS`` names a file, not a
    secret, and passes."""
    for name, value in env.items():
        has_password = bool(urlparse(value).password) if "://" in value else False
        if (_SECRET_NAME.search(name) and name != "GOOGLE_APPLICATION_CREDENTIALS") or has_password:
            raise DefinitionError(
                f"env {name}: a credential would be written into the Kubeflow spec in clear text; pass it "
                f"by reference to a Kubernetes Secret instead: secret_env={{'{name}': 'SECRET_NAME:KEY'}} "
                f"(mlpipe compile --secret-env {name}=SECRET_NAME:KEY), with any password removed from URIs"
            )
    return dict(env)


def secret_reference(name: str, reference: str) -> tuple[str, str]:
    """``"SECRET_NAME:KEY"`` as (Secret name, key), checked against Kubernetes' naming rules."""
    secret, _, key = reference.partition(":")
    if not (
        re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", secret) and re.fullmatch(r"[-._a-zA-Z0-9]+", key)
    ):
        raise DefinitionError(
            f"secret_env {name}={reference!r}: expected SECRET_NAME:KEY, a Kubernetes Secret (lower-case "
            f"letters, digits, '-', '.') and one of its keys, e.g. mlpipe-mysql:password"
        )
    return secret, key


def _ir_parameter_value(ir: PipelineIR) -> str:
    """The IR as the ``mlpipe_ir`` default, without a MySQL password: anyone who can see the pipeline
    in KFP's UI can read the spec. Pods take the password from ``MLPIPE_MYSQL_PASSWORD`` instead."""
    return json.dumps(ir.without_secrets().to_dict(), separators=(",", ":"))
