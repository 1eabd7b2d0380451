"""``mlpipe serve``: the flags, and running the chosen server until SIGINT/SIGTERM.

The main ``mlpipe`` command wires its ``serve`` subcommand to :func:`add_serve_arguments` and
:func:`run_serve`; ``python -m mlpipe.serving`` does the same on its own. The flags are
``tensorflow_model_server``'s, so a TF Serving command line works after ``mlpipe serve``.
Configuration errors raise ``ServingError`` with a message meant for the user.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import tempfile
import threading

from mlpipe.serving.launcher import (
    BACKENDS,
    DEFAULT_DOCKER_IMAGE,
    ServeOptions,
    binary_command,
    docker_command,
    resolve_backend,
    run_command,
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``mlpipe serve``'s flags (TF Serving's names and defaults, REST on 8501) to ``parser``."""
    models = parser.add_argument_group(
        "models (give --model_name and --model_base_path, or --model_config_file)"
    )
    models.add_argument("--model_name", help="name of the model in request paths")
    models.add_argument(
        "--model_base_path", help="directory whose integer-named subdirectories are the model's versions"
    )
    models.add_argument(
        "--model_config_file", help="text-format ModelServerConfig (models.config) naming the models"
    )
    network = parser.add_argument_group("network")
    network.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0: any free port)")
    network.add_argument(
        "--rest_api_port", type=int, default=8501, help="REST port (default 8501; 0: any free port)"
    )
    network.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)",
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--enable_batching",
        nargs="?",
        const=True,
        default=False,
        type=_boolean,
        help="merge concurrent requests into batches (also accepts --enable_batching=true|false)",
    )
    serving.add_argument(
        "--batching_parameters_file", help="text-format BatchingParameters (max_batch_size, ...)"
    )
    serving.add_argument(
        "--file_system_poll_wait_seconds",
        type=int,
        default=1,
        help="seconds between looks for new versions (default 1; 0: look once at start)",
    )
    serving.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="seconds between rereads of --model_config_file, applying changes (labels, promote); "
        "default 0: read it once",
    )
    serving.add_argument(
        "--allow_version_labels_for_unavailable_models",
        nargs="?",
        const=True,
        default=False,
        type=_boolean,
        help="let a new label point at a version still loading (needed to start with labels, and to push "
        "a canary in one config change)",
    )
    serving.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: tensorflow_model_server if on PATH, else builtin (default); binary; docker; builtin",
    )
    serving.add_argument(
        "--docker_image",
        default=DEFAULT_DOCKER_IMAGE,
        help=f"image for --backend docker (default {DEFAULT_DOCKER_IMAGE})",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then shut down cleanly; returns the process exit status."""
    options = ServeOptions(
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        model_config_file=args.model_config_file,
        port=args.port,
        rest_api_port=args.rest_api_port,
        host=args.host,
        enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        backend=args.backend,
        docker_image=args.docker_image,
    )
    backend = resolve_backend(options.backend)
    if backend == "builtin":
        return _serve_builtin(options)
    with tempfile.TemporaryDirectory(prefix="mlpipe-serve-") as staging:
        argv = binary_command(options, staging) if backend == "binary" else docker_command(options, staging)
        print(f"mlpipe serve: running {shlex.join(argv)}", flush=True)
        return run_command(argv)


def _serve_builtin(options: ServeOptions) -> int:
    from mlpipe.process_exit import freeze_heap_at_exit
    from mlpipe.serving.batching import BatchingParameters
    from mlpipe.serving.server import ModelServer

    freeze_heap_at_exit()  # the process ends when serving stops

    batching = None
    if options.enable_batching:
        batching = (
            BatchingParameters.read(options.batching_parameters_file)
            if options.batching_parameters_file
            else BatchingParameters()
        )
    server = ModelServer(
        options.served_models(),
        grpc_port=options.port,
        rest_port=options.rest_api_port,
        host=options.host,
        poll_wait_seconds=options.file_system_poll_wait_seconds,
        batching=batching,
        allow_version_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        model_config_file=options.model_config_file,
        model_config_file_poll_wait_seconds=options.model_config_file_poll_wait_seconds,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        names = ", ".join(model.name for model in server.models)
        print(
            f"mlpipe serve: serving {names} (built-in server): gRPC {server.grpc_address}, "
            f"REST http://{server.rest_address}",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("mlpipe serve: stopped", flush=True)
    return 0


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
