"""Which server runs ``mlpipe serve``, and the command line that runs the real one.

``mlpipe serve`` takes ``tensorflow_model_server``'s own flags. With ``--backend auto`` it runs that
binary when it is on PATH and the built-in server otherwise; ``binary`` and ``docker`` insist on the
real server (``docker`` runs the ``tensorflow/serving`` image with the model directories mounted
read-only). The real server is given a monitoring config enabling the Prometheus endpoint at the
path the built-in server uses, so both answer the same URLs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass

from mlpipe.errors import ServingError
from mlpipe.io.uris import is_remote
from mlpipe.serving.config import ServedModel, read_model_config, write_model_config
from mlpipe.serving.layout import base_path_location
from mlpipe.serving.metrics import PROMETHEUS_PATH

log = logging.getLogger(__name__)

BACKENDS = ("auto", "builtin", "binary", "docker")
BINARY = "tensorflow_model_server"
DOCKER = "docker"
DEFAULT_DOCKER_IMAGE = "tensorflow/serving:2.16.1"
CONTAINER_GRPC_PORT = 8500
CONTAINER_REST_PORT = 8501
CONTAINER_MODELS = "/models"
CONTAINER_CONFIG = "/mlpipe-serve"
MONITORING_CONFIG = f'prometheus_config {{\n  enable: true\n  path: "{PROMETHEUS_PATH}"\n}}\n'


@dataclass(frozen=True)
class ServeOptions:
    """The flags of ``mlpipe serve`` (``tensorflow_model_server``'s, plus the backend choice)."""

    model_name: str | None = None
    model_base_path: str | None = None
    model_config_file: str | None = None
    port: int = 8500
    rest_api_port: int = 8501
    host: str = "127.0.0.1"
    enable_batching: bool = False
    batching_parameters_file: str | None = None
    file_system_poll_wait_seconds: int = 1
    model_config_file_poll_wait_seconds: int = 0
    allow_version_labels_for_unavailable_models: bool = False
    backend: str = "auto"
    docker_image: str = DEFAULT_DOCKER_IMAGE

    def __post_init__(self) -> None:
        single = self.model_name is not None or self.model_base_path is not None
        if single == (self.model_config_file is not None):
            raise ServingError(
                "give either --model_name and --model_base_path, or --model_config_file (not both, not neither)"
            )
        if single and not (self.model_name and self.model_base_path):
            raise ServingError("--model_name and --model_base_path go together; give both")
        if self.batching_parameters_file and not self.enable_batching:
            raise ServingError("--batching_parameters_file needs --enable_batching")
        for flag, port in (("--port", self.port), ("--rest_api_port", self.rest_api_port)):
            if not 0 <= port <= 65535:
                raise ServingError(f"{flag} must be a port number (0-65535), got {port}")
        if self.file_system_poll_wait_seconds < 0:
            raise ServingError("--file_system_poll_wait_seconds must be >= 0 (0 looks for versions once)")
        if self.model_config_file_poll_wait_seconds < 0:
            raise ServingError("--model_config_file_poll_wait_seconds must be >= 0 (0: read the config once)")
        if self.model_config_file_poll_wait_seconds and self.model_config_file is None:
            raise ServingError("--model_config_file_poll_wait_seconds needs --model_config_file")
        if self.backend not in BACKENDS:
            raise ServingError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    def served_models(self) -> list[ServedModel]:
        """The models these flags name (reading ``--model_config_file`` if given)."""
        if self.model_config_file is not None:
            return read_model_config(self.model_config_file)
        assert self.model_name and self.model_base_path  # __post_init__: both, or a config file
        return [ServedModel(self.model_name, base_path_location(self.model_base_path))]


def resolve_backend(requested: str) -> str:
    """``builtin``, ``binary`` or ``docker`` for a ``--backend`` value; fails if the one asked for is missing."""
    if requested == "auto":
        return "binary" if shutil.which(BINARY) else "builtin"
    if requested == "binary" and not shutil.which(BINARY):
        raise ServingError(
            f"--backend binary: {BINARY} is not on PATH; install TensorFlow Serving, use --backend docker, "
            "or --backend builtin"
        )
    if requested == "docker" and not shutil.which(DOCKER):
        raise ServingError("--backend docker: docker is not on PATH; install Docker or use --backend builtin")
    return requested


def binary_command(options: ServeOptions, staging_dir: str) -> list[str]:
    """The ``tensorflow_model_server`` command line; config files it needs go to ``staging_dir``."""
    _require_fixed_ports(options)
    if options.host not in ("0.0.0.0", "::"):
        log.warning(
            "%s listens on all interfaces (it has no host flag); --host %s only applies to the builtin and "
            "docker backends",
            BINARY,
            options.host,
        )
    argv = [
        shutil.which(BINARY) or BINARY,
        f"--port={options.port}",
        f"--rest_api_port={options.rest_api_port}",
    ]
    if options.model_config_file is not None:
        argv.append(f"--model_config_file={os.path.abspath(options.model_config_file)}")
    else:
        assert options.model_base_path  # no config file: the flags name the model (checked on parsing)
        argv += [
            f"--model_name={options.model_name}",
            f"--model_base_path={base_path_location(options.model_base_path)}",
        ]
    argv.append(f"--file_system_poll_wait_seconds={options.file_system_poll_wait_seconds}")
    argv += _label_flags(options)
    argv.append(f"--monitoring_config_file={_write(staging_dir, 'monitoring.config', MONITORING_CONFIG)}")
    if options.enable_batching:
        argv.append("--enable_batching=true")
        if options.batching_parameters_file:
            argv.append(f"--batching_parameters_file={os.path.abspath(options.batching_parameters_file)}")
    return argv


def docker_command(options: ServeOptions, staging_dir: str) -> list[str]:
    """A ``docker run`` of the TF Serving image: models mounted read-only, ports published on ``--host``.

    The config files the container reads (models.config with container paths, monitoring and batching
    configs) are written to ``staging_dir``, mounted at ``/mlpipe-serve``.
    """
    _require_fixed_ports(options)
    host = f"[{options.host}]" if ":" in options.host else options.host
    argv = [
        shutil.which(DOCKER) or DOCKER, "run", "--rm", "--init",
        "-p", f"{host}:{options.port}:{CONTAINER_GRPC_PORT}",
        "-p", f"{host}:{options.rest_api_port}:{CONTAINER_REST_PORT}",
        "-v", f"{os.path.abspath(staging_dir)}:{CONTAINER_CONFIG}:ro",
    ]  # fmt: skip
    container_models = []
    for model in options.served_models():
        if is_remote(model.base_path):
            raise ServingError(
                f"--backend docker mounts model directories and cannot mount {model.base_path!r}; "
                "use --backend builtin (or binary, whose TF Serving reads buckets itself)"
            )
        mount = f"{CONTAINER_MODELS}/{model.name}"
        argv += ["-v", f"{os.path.abspath(model.base_path)}:{mount}:ro"]
        container_models.append(
            ServedModel(
                model.name, mount, version_policy=model.version_policy, version_labels=model.version_labels
            )
        )
    server_flags = [f"--port={CONTAINER_GRPC_PORT}", f"--rest_api_port={CONTAINER_REST_PORT}"]
    if options.model_config_file is not None:
        write_model_config(container_models, os.path.join(staging_dir, "models.config"))
        server_flags.append(f"--model_config_file={CONTAINER_CONFIG}/models.config")
    else:
        server_flags += [
            f"--model_name={options.model_name}",
            f"--model_base_path={container_models[0].base_path}",
        ]
    server_flags.append(f"--file_system_poll_wait_seconds={options.file_system_poll_wait_seconds}")
    if options.model_config_file_poll_wait_seconds:
        raise ServingError(
            "--backend docker reads a copy of the model config with container paths, so it cannot follow "
            "changes to --model_config_file; use --backend binary or builtin to poll it"
        )
    server_flags += _label_flags(options)
    _write(staging_dir, "monitoring.config", MONITORING_CONFIG)
    server_flags.append(f"--monitoring_config_file={CONTAINER_CONFIG}/monitoring.config")
    if options.enable_batching:
        server_flags.append("--enable_batching=true")
        if options.batching_parameters_file:
            shutil.copyfile(options.batching_parameters_file, os.path.join(staging_dir, "batching.config"))
            server_flags.append(f"--batching_parameters_file={CONTAINER_CONFIG}/batching.config")
    return [*argv, "--entrypoint", BINARY, options.docker_image, *server_flags]


def run_command(argv: list[str]) -> int:
    """Run the real server in the foreground until it exits; SIGINT/SIGTERM are passed on to it.

    Returns 0 when it stopped because of a forwarded signal, else its exit status.
    """
    log.info("running %s", " ".join(argv))
    try:
        process = subprocess.Popen(argv)
    except OSError as error:
        raise ServingError(f"cannot run {argv[0]}: {error.strerror}") from None
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        process.send_signal(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        if in_main_thread
        else {}
    )
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if forwarded and code in (0, *(-sig for sig in forwarded)):
        return 0
    return code if code >= 0 else 128 - code


def _label_flags(options: ServeOptions) -> list[str]:
    flags = []
    if options.model_config_file_poll_wait_seconds:
        flags.append(f"--model_config_file_poll_wait_seconds={options.model_config_file_poll_wait_seconds}")
    if options.allow_version_labels_for_unavailable_models:
        flags.append("--allow_version_labels_for_unavailable_models=true")
    return flags


def _require_fixed_ports(options: ServeOptions) -> None:
    if options.port == 0 or options.rest_api_port == 0:
        raise ServingError(
            "the real TF Serving server needs fixed ports (it reads --rest_api_port=0 as 'REST off'); "
            "give --port and --rest_api_port, or use --backend builtin"
        )


def _write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
