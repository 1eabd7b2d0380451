"""InfraValidator: can a serving process load this model and answer requests?

The model is served by a separate process, ``python -m mlpipe.serving`` (which runs
``tensorflow_model_server`` when it is on PATH and mlpipe's built-in server otherwise), exactly as
it would be after a push. The validator waits for the model to become AVAILABLE (with a deadline),
sends ``predict`` requests made of real examples, and records an InfraBlessing. A model that
fails any step is a verdict, not an error: ``INFRA_NOT_BLESSED`` with the reason in the log, and
a Pusher given the blessing will not push it.
"""

from __future__ import annotations

import gzip
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.types.standard import Examples, InfraBlessing, Model

if TYPE_CHECKING:
    from mlpipe.serving.client import Client

SERVING_MODEL_DIR = "Format-Serving"
MODEL_NAME = "infra_validation"
DEFAULT_REQUEST_SPEC = {"num_examples": 1, "split": "eval"}
DEFAULT_MAX_LOADING_SECONDS = 300.0
_LOG_TAIL_LINES = 30


class InfraValidator(Component):
    """Serve ``model`` in a fresh serving process and send it ``request_spec['num_examples']`` requests.

    Without ``examples`` only loading is checked. ``max_loading_seconds`` bounds the wait for the
    server to report the model AVAILABLE (TensorFlow's import alone takes seconds).
    """

    SPEC = ComponentSpec(
        inputs={"model": Model, "examples": InputSpec(Examples, optional=True)},
        outputs={"blessing": InfraBlessing},
        parameters={
            "request_spec": ParameterSpec(dict, default=DEFAULT_REQUEST_SPEC),
            "max_loading_seconds": ParameterSpec(float, default=DEFAULT_MAX_LOADING_SECONDS),
        },
    )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        model = ctx.input("model")
        examples = ctx.input("examples")
        assert model is not None  # a required input
        spec = {**DEFAULT_REQUEST_SPEC, **ctx.parameters["request_spec"]}
        requests = (
            _first_records(examples.split_uri(spec["split"]), int(spec["num_examples"])) if examples else []
        )
        verdict = validate_serving(
            os.path.join(model.uri, SERVING_MODEL_DIR),
            requests,
            work_dir=ctx.tmp_dir,
            max_loading_seconds=ctx.parameters["max_loading_seconds"],
        )
        blessing = ctx.outputs["blessing"]
        os.makedirs(blessing.uri, exist_ok=True)
        open(os.path.join(blessing.uri, "INFRA_BLESSED" if verdict.ok else "INFRA_NOT_BLESSED"), "w").close()
        blessing.set_custom_property("blessed", 1 if verdict.ok else 0)
        if verdict.ok:
            ctx.log.info("infra validation of %s passed: %s", model.uri, verdict.reason)
        else:
            ctx.log.warning("infra validation of %s FAILED: %s", model.uri, verdict.reason)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def validate_serving(
    saved_model_dir: str, requests: list[bytes], *, work_dir: str, max_loading_seconds: float
) -> Verdict:
    """Serve ``saved_model_dir`` as version 1 in a new server process and predict on ``requests``.

    ``requests`` are serialized tf.Examples for the ``serving_default`` signature.
    """
    from mlpipe.serving.client import Client
    from mlpipe.serving.layout import is_saved_model_dir
    from mlpipe.serving.status import ServingRequestError

    if not is_saved_model_dir(saved_model_dir):
        return Verdict(False, f"{saved_model_dir} is not a SavedModel directory (no saved_model.pb)")
    base_path = os.path.join(work_dir, "infra_validation_models", MODEL_NAME)
    os.makedirs(base_path, exist_ok=True)
    version_dir = os.path.join(base_path, "1")
    if not os.path.lexists(version_dir):
        os.symlink(os.path.abspath(saved_model_dir), version_dir)
    log_path = os.path.join(work_dir, "infra_validation_server.log")
    with ServerProcess(base_path, log_path) as server, Client(server.rest_address, MODEL_NAME) as client:
        failure = server.wait_until_available(client, max_loading_seconds)
        if failure:
            return Verdict(False, failure)
        if not requests:
            return Verdict(True, "the model loaded (no examples given, so no requests sent)")
        try:
            predictions = client.predict(requests)
        except (ServingRequestError, OSError) as error:
            return Verdict(False, f"predict on {len(requests)} example(s) failed: {error}")
        if len(predictions) != len(requests):
            return Verdict(
                False, f"predict answered {len(predictions)} predictions for {len(requests)} examples"
            )
        return Verdict(True, f"the model loaded and answered predict on {len(requests)} example(s)")


def _free_ports() -> tuple[int, int]:
    """Two free loopback ports; the real server needs fixed ports, so they are chosen here."""
    sockets = [socket.socket() for _ in range(2)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return sockets[0].getsockname()[1], sockets[1].getsockname()[1]
    finally:
        for s in sockets:
            s.close()


class ServerProcess:
    """``python -m mlpipe.serving`` for one model, its output in ``log_path``; stopped on exit."""

    def __init__(self, model_base_path: str, log_path: str):
        self.model_base_path = model_base_path
        self.log_path = log_path
        grpc_port, self.rest_port = _free_ports()
        self.argv = [
            sys.executable, "-m", "mlpipe.serving",
            f"--model_name={MODEL_NAME}", f"--model_base_path={model_base_path}",
            f"--port={grpc_port}", f"--rest_api_port={self.rest_port}",
            "--file_system_poll_wait_seconds=0",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rest_address(self) -> str:
        return f"127.0.0.1:{self.rest_port}"

    def __enter__(self) -> ServerProcess:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_until_available(self, client: Client, timeout: float) -> str:
        """Poll the model's status until AVAILABLE; return ``""``, or why it never got there."""
        from mlpipe.serving.status import ServingRequestError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll() if self.process else None
            if code is not None:
                return (
                    f"the server exited with status {code} before the model was AVAILABLE:\n{self.log_tail()}"
                )
            try:
                states = client.status()["model_version_status"]
            except (ServingRequestError, OSError):
                time.sleep(0.2)  # not listening yet: the server opens its ports once models are loaded
                continue
            errors = [
                s["status"].get("error_message", "") for s in states if s["status"].get("error_code") != "OK"
            ]
            if errors:
                return f"the server could not load the model: {'; '.join(errors)}"
            if any(s["state"] == "AVAILABLE" for s in states):
                return ""
            time.sleep(0.2)
        return f"the model was not AVAILABLE after {timeout:g}s:\n{self.log_tail()}"

    def log_tail(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-_LOG_TAIL_LINES:])


def _first_records(split_dir: str, count: int) -> list[bytes]:
    """The first ``count`` records of a split's gzipped TFRecord files, read without TensorFlow.

    TFRecord framing: uint64 length, uint32 length CRC, data, uint32 data CRC (little endian).
    """
    from mlpipe.io.examples import example_files

    records: list[bytes] = []
    for path in example_files(split_dir):
        with gzip.open(path, "rb") as f:
            while len(records) < count:
                header = f.read(12)
                if len(header) < 12:
                    break
                (length,) = struct.unpack("<Q", header[:8])
                records.append(f.read(length))
                f.read(4)
        if len(records) >= count:
            break
    return records
