"""What a team deploys to a Kubeflow cluster: the image, the secrets by reference, the shared volume.

The spec is checked with kfp's own parsers (the pipeline spec and the kubernetes platform spec
protos, strict: an unknown field fails) and loaded with kfp's component loader; the Dockerfile is
checked by running a node from exactly the files it copies, since no Docker daemon runs here.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

from mlpipe.cli import main
from mlpipe.errors import DefinitionError
from mlpipe.metadata.config import mysql
from mlpipe.orchestration.kubeflow import KubeflowDagRunner
from tests.orchestration import four_nodes

REPO = Path(__file__).resolve().parents[2]
PIPELINE_FILE = str(Path(__file__).parent / "four_nodes.py")


def _pipeline(tmp_path: Path, password: str = ""):
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    metadata = mysql("mlmd.ml.svc", "mlmd", "mlpipe", password=password)
    return four_nodes.create_pipeline(str(tmp_path / "root"), str(module), metadata=metadata)


def _documents(path: str) -> tuple[dict, dict]:
    with open(path) as f:
        pipeline_doc, platform_doc = yaml.safe_load_all(f)
    return pipeline_doc, platform_doc


def test_spec_names_the_image_takes_secrets_by_reference_and_mounts_the_volume(tmp_path):
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    runner = KubeflowDagRunner(
        image="registry.example.com/ml/mlpipe:abc123",
        env={
            "MLPIPE_METADATA": "mysql://mlpipe@mlmd.ml.svc:3306/mlmd",
            "AWS_ENDPOINT_URL": "http://s3.ml.svc",
        },
        secret_env={
            "MLPIPE_MYSQL_PASSWORD": "mlpipe-mysql:password",
            "AWS_SECRET_ACCESS_KEY": "mlpipe-s3:secret_access_key",
        },
        volumes={"pipeline-data": str(tmp_path)},
    )
    path = runner.compile(_pipeline(tmp_path, password="hunter2-db"), tmp_path / "taxi.yaml")

    text = Path(path).read_text()
    assert "hunter2-db" not in text
    pipeline_doc, platform_doc = _documents(path)
    spec = json_format.ParseDict(pipeline_doc, pipeline_spec_pb2.PipelineSpec())
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"registry.example.com/ml/mlpipe:abc123"}
    for executor in executors.values():
        assert {v["name"]: v["value"] for v in executor["container"]["env"]} == {
            "MLPIPE_METADATA": "mysql://mlpipe@mlmd.ml.svc:3306/mlmd",
            "AWS_ENDPOINT_URL": "http://s3.ml.svc",
        }

    platform = platform_doc["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert platform.keys() == executors.keys()
    for config in platform.values():
        parsed = json_format.ParseDict(config, k8s.KubernetesExecutorConfig())
        assert sorted(
            (s.secret_name, kv.secret_key, kv.env_var) for s in parsed.secret_as_env for kv in s.key_to_env
        ) == [
            ("mlpipe-mysql", "password", "MLPIPE_MYSQL_PASSWORD"),
            ("mlpipe-s3", "secret_access_key", "AWS_SECRET_ACCESS_KEY"),
        ]
        ((mount),) = parsed.pvc_mount
        assert (mount.constant, mount.mount_path) == ("pipeline-data", str(tmp_path))

    loaded = components.load_component_from_file(path)  # kfp's own loader accepts both documents
    assert loaded.name == "four-nodes"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MLPIPE_MYSQL_PASSWORD": "pw"}, "MLPIPE_MYSQL_PASSWORD"),
        ({"AWS_SECRET_ACCESS_KEY": "k"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SESSION_TOKEN": "t"}, "AWS_SESSION_TOKEN"),
        ({"MLPIPE_METADATA": "mysql://mlpipe:pw@db:3306/mlmd"}, "MLPIPE_METADATA"),
    ],
)
def test_a_credential_in_plain_env_is_refused_with_the_way_to_pass_it(tmp_path, env, named):
    with pytest.raises(
        DefinitionError, match=rf"env {named}: .*secret_env=.*--secret-env {named}=SECRET_NAME:KEY"
    ):
        KubeflowDagRunner(env=env)


def test_a_file_path_credential_variable_and_a_plain_uri_pass():
    runner = KubeflowDagRunner(
        env={"GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/sa.json", "MLPIPE_METADATA": "mysql://u@db/m"}
    )
    assert runner.env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/secrets/sa.json"


@pytest.mark.parametrize("reference", ["mlpipe-mysql", "Mlpipe:password", ":password", "a:b c"])
def test_a_malformed_secret_reference_names_the_expected_form(reference):
    with pytest.raises(DefinitionError, match=r"expected SECRET_NAME:KEY"):
        KubeflowDagRunner(secret_env={"MLPIPE_MYSQL_PASSWORD": reference})


def test_compile_warns_when_pods_would_lack_the_password_or_the_artifacts(tmp_path, caplog):
    KubeflowDagRunner().compile(_pipeline(tmp_path), tmp_path / "p.yaml")
    text = caplog.text
    assert "no task is given MLPIPE_MYSQL_PASSWORD" in text
    assert "which pods on other hosts do not share" in text


def test_the_command_line_takes_secret_env_and_volume(tmp_path, monkeypatch, capsys):
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    monkeypatch.setenv("FOUR_NODES_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("FOUR_NODES_MODULE", str(module))
    out = tmp_path / "p.yaml"
    args = ["compile", PIPELINE_FILE, "-o", str(out), "--target", "kubeflow", "--image", "reg/mlpipe:1"]
    secret = ["--secret-env", "MLPIPE_MYSQL_PASSWORD=mlpipe-mysql:password", "--volume", "data:/data"]
    assert main(args + secret) == 0
    _, platform_doc = _documents(str(out))
    config = next(iter(platform_doc["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()))
    assert config["secretAsEnv"][0]["secretName"] == "mlpipe-mysql"
    assert main(args + ["--env", "MLPIPE_MYSQL_PASSWORD=pw"]) == 1
    assert "--secret-env MLPIPE_MYSQL_PASSWORD=SECRET_NAME:KEY" in capsys.readouterr().err
    assert main(["compile", PIPELINE_FILE, "-o", str(out), "--volume", "data:/data"]) == 1
    assert "apply to --target kubeflow only" in capsys.readouterr().err


def _dockerfile_copies() -> list[str]:
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def _image_tree(dest: Path) -> Path:
    """/app as the Dockerfile builds it: the COPY sources, minus what .dockerignore leaves out."""
    ignore = [p for p in (REPO / ".dockerignore").read_text().splitlines() if p.startswith("**/")]
    for source in _dockerfile_copies():
        src = REPO / source
        (dest / source).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / source, ignore=shutil.ignore_patterns(*(p[3:] for p in ignore)))
        else:
            shutil.copy2(src, dest / source)
    return dest


def test_the_dockerfile_copies_only_files_the_context_keeps_on_the_pinned_python():
    text = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text  # setup.py: python_requires >=3.11,<3.12
    assert "-r requirements.lock" in text and "--no-deps ." in text  # the pinned stack, never resolved anew
    kept = [p[1:] for p in (REPO / ".dockerignore").read_text().splitlines() if p.startswith("!")]
    for source in _dockerfile_copies():
        assert (REPO / source).exists(), source
        assert any(fnmatch.fnmatch(source, k) or source.rstrip("/") == k.rstrip("/") for k in kept), source


@pytest.mark.e2e
def test_a_node_runs_from_exactly_the_files_the_image_holds(tmp_path):
    """``mlpipe run-node`` (what every task runs) from a copy of the image's /app, nothing else of the repo."""
    app = _image_tree(tmp_path / "app")
    assert not (app / "tests").exists() and (app / "pipelines" / "taxi.py").is_file()
    pipeline = _pipeline(tmp_path)
    ir_file = tmp_path / "ir.json"
    pipeline.compile().save(ir_file)
    env = {
        **os.environ,
        "PYTHONPATH": str(app),
        "MLPIPE_METADATA": str(tmp_path / "metadata.sqlite"),
        "MLPIPE_TEST_CALLS_LOG": str(tmp_path / "calls.log"),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import mlpipe; print(mlpipe.__file__)"],
        env=env,
        cwd=app,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip() == str(app / "mlpipe" / "__init__.py")
    # four_nodes lives in tests/, which the image does not hold: the task reads the component
    # from its source file, as a user's own pipeline code would be (COPY'd or mounted)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlpipe.cli",
            "run-node",
            "--ir",
            str(ir_file),
            "--node",
            "ingest",
            "--run-id",
            "r1",
        ],
        env=env,
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "mlpipe: node ingest COMPLETE" in run.stdout
    assert (tmp_path / "calls.log").read_text().split() == ["ingest"]
