"""``mlpipe serve`` running the real server: the exact command lines, exec'd through fake executables.

The real ``tensorflow_model_server`` (and a Docker daemon) are not available here, so a tiny fake
executable named like the real one is put first on PATH; it records the argv it was started with
and the config files it was given. That checks the launcher really runs the program with the right
flags, which is all the launcher does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

import pytest

from mlpipe.errors import ServingError
from mlpipe.serving import ServedModel, VersionPolicy, read_model_config, write_model_config
from mlpipe.serving.cli import add_serve_arguments, run_serve
from mlpipe.serving.launcher import ServeOptions, resolve_backend

FAKE = """#!{python}
import json, os, signal, sys, time
args = sys.argv[1:]
record = {{"argv": args, "files": {{}}}}
for arg in args:
    if arg.startswith("--") and arg.split("=")[0].endswith("_file"):
        path = arg.split("=", 1)[1]
        if os.path.isfile(path):
            record["files"][arg.split("=")[0]] = open(path).read()
    if ":/mlpipe-serve:" in arg:  # docker: the staged config directory, read on the host side
        host = arg.split(":/mlpipe-serve:")[0]
        record["files"].update({{name: open(os.path.join(host, name)).read() for name in os.listdir(host)}})
if os.environ.get("FAKE_WAIT_FOR_SIGNAL"):
    def stop(signum, frame):
        record["signal"] = signum
        json.dump(record, open(os.environ["FAKE_RECORD"], "w"))
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    open(os.environ["FAKE_WAIT_FOR_SIGNAL"], "w").close()
    time.sleep(60)
json.dump(record, open(os.environ["FAKE_RECORD"], "w"))
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Put fake ``tensorflow_model_server`` and ``docker`` first on PATH; returns a reader of their record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("tensorflow_model_server", "docker"):
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable))
        path.chmod(0o755)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RECORD", str(record))
    return lambda: json.loads(record.read_text())


def serve(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(list(argv)))


def test_auto_runs_tensorflow_model_server_with_the_same_flags(fake, tmp_path, capsys):
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 64 }\n")
    code = serve(
        "--model_name=taxi",
        f"--model_base_path={tmp_path}/serving/taxi",
        "--port=9000",
        "--rest_api_port=9001",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        "--file_system_poll_wait_seconds=5",
    )
    assert code == 0
    record = fake()
    argv = record["argv"]
    monitoring = next(a for a in argv if a.startswith("--monitoring_config_file="))
    assert argv == [
        "--port=9000",
        "--rest_api_port=9001",
        "--model_name=taxi",
        f"--model_base_path={tmp_path}/serving/taxi",
        "--file_system_poll_wait_seconds=5",
        monitoring,
        "--enable_batching=true",
        f"--batching_parameters_file={batching}",
    ]
    assert record["files"]["--batching_parameters_file"] == "max_batch_size { value: 64 }\n"
    assert record["files"]["--monitoring_config_file"] == (
        'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    assert not os.path.exists(monitoring.split("=", 1)[1])  # the staging directory is cleaned up
    assert "tensorflow_model_server --port=9000" in capsys.readouterr().out


def test_binary_backend_passes_the_model_config_file(fake, tmp_path, monkeypatch):
    write_model_config([ServedModel("taxi", str(tmp_path / "taxi"))], tmp_path / "models.config")
    monkeypatch.chdir(tmp_path)
    assert serve("--backend", "binary", "--model_config_file", "models.config") == 0
    argv = fake()["argv"]
    assert argv[:3] == [
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_config_file={tmp_path}/models.config",
    ]
    assert "--file_system_poll_wait_seconds=1" in argv
    assert not any(a.startswith("--enable_batching") for a in argv)


def test_rollout_flags_reach_the_real_server(fake, tmp_path):
    """A server that follows labelled pushes and promotions: config polling and new labels on loading versions."""
    write_model_config([ServedModel("taxi", str(tmp_path / "taxi"))], tmp_path / "models.config")
    config = f"--model_config_file={tmp_path}/models.config"
    flags = ("--model_config_file_poll_wait_seconds=5", "--allow_version_labels_for_unavailable_models")
    assert serve("--backend", "binary", config, *flags) == 0
    argv = fake()["argv"]
    assert "--model_config_file_poll_wait_seconds=5" in argv
    assert "--allow_version_labels_for_unavailable_models=true" in argv
    with pytest.raises(ServingError, match="cannot follow changes to --model_config_file"):
        serve("--backend", "docker", config, *flags)


def test_docker_backend_mounts_models_and_rewrites_the_config(fake, tmp_path):
    models = [
        ServedModel("taxi", str(tmp_path / "taxi"), VersionPolicy.latest(2), version_labels={"stable": 3}),
        ServedModel("iris", str(tmp_path / "iris")),
    ]
    write_model_config(models, tmp_path / "models.config")
    assert (
        serve("--backend=docker", f"--model_config_file={tmp_path}/models.config", "--enable_batching=true")
        == 0
    )
    record = fake()
    argv = record["argv"]
    staging = argv[argv.index("-v") + 1].split(":")[0]
    assert argv == [
        "run", "--rm", "--init",
        "-p", "127.0.0.1:8500:8500",
        "-p", "127.0.0.1:8501:8501",
        "-v", f"{staging}:/mlpipe-serve:ro",
        "-v", f"{tmp_path}/taxi:/models/taxi:ro",
        "-v", f"{tmp_path}/iris:/models/iris:ro",
        "--entrypoint", "tensorflow_model_server",
        "tensorflow/serving:2.16.1",
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/mlpipe-serve/models.config",
        "--file_system_poll_wait_seconds=1",
        "--monitoring_config_file=/mlpipe-serve/monitoring.config",
        "--enable_batching=true",
    ]  # fmt: skip
    staged = tmp_path / "staged.config"
    staged.write_text(record["files"]["models.config"])
    assert read_model_config(staged) == [
        ServedModel("taxi", "/models/taxi", VersionPolicy.latest(2), version_labels={"stable": 3}),
        ServedModel("iris", "/models/iris"),
    ]


def test_sigterm_is_passed_to_the_real_server(fake, tmp_path, monkeypatch):
    ready = tmp_path / "ready"
    monkeypatch.setenv("FAKE_WAIT_FOR_SIGNAL", str(ready))

    def terminate_when_ready():
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_when_ready)
    killer.start()
    code = serve("--model_name=m", f"--model_base_path={tmp_path}")
    killer.join()
    assert code == 0
    assert fake()["signal"] == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == handler_before


def test_backend_resolution(fake, tmp_path, monkeypatch):
    assert resolve_backend("auto") == "binary"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert resolve_backend("auto") == "builtin"
    with pytest.raises(ServingError, match="tensorflow_model_server is not on PATH"):
        resolve_backend("binary")
    with pytest.raises(ServingError, match="docker is not on PATH"):
        resolve_backend("docker")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give either --model_name and --model_base_path, or --model_config_file"),
        ({"model_name": "a", "model_base_path": "/m", "model_config_file": "c"}, "not both"),
        ({"model_name": "a"}, "go together"),
        ({"model_config_file": "c", "batching_parameters_file": "b"}, "needs --enable_batching"),
        ({"model_config_file": "c", "port": 70000}, "--port must be a port number"),
        ({"model_config_file": "c", "backend": "k8s"}, "--backend must be one of"),
        (
            {"model_name": "a", "model_base_path": "/m", "model_config_file_poll_wait_seconds": 2},
            "needs --model_config_file",
        ),
    ],
)
def test_invalid_flags_are_refused(options, message):
    with pytest.raises(ServingError, match=message):
        ServeOptions(**options)


def test_the_real_server_needs_fixed_ports(fake, tmp_path):
    with pytest.raises(ServingError, match="needs fixed ports"):
        serve("--backend=binary", "--model_name=m", f"--model_base_path={tmp_path}", "--rest_api_port=0")
