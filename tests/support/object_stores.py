"""Real object-store servers on 127.0.0.1 for tests, in a virtualenv of their own: moto's S3 server
mode, and gcp-storage-emulator for the GCS JSON API.

moto pins botocore/boto3 versions that need not match mlpipe's (s3fs brings aiobotocore, which pins
botocore tightly), so the servers get their own venv, built once from
``requirements-objstore-servers.lock`` and kept between runs (a marker holds the lock's hash), as
tests/support/airflow_env.py does for Airflow. mlpipe reaches them exactly as it would reach AWS,
MinIO or GCS: through ``AWS_ENDPOINT_URL`` and the usual credential variables, or
``STORAGE_EMULATOR_HOST``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements-objstore-servers.lock"
MARKER = ".mlpipe-objstore-servers-lock.sha256"
ACCESS_KEY, SECRET_KEY = "mlpipe-test-key", "mlpipe-test-secret-do-not-log"


def ensure_venv(path: Path | None = None) -> Path:
    """The venv with the locked servers (``$MLPIPE_OBJSTORE_SERVERS_VENV``, else ``.objstore-servers-venv``)."""
    venv = (
        path or Path(os.environ.get("MLPIPE_OBJSTORE_SERVERS_VENV") or REPO / ".objstore-servers-venv")
    ).absolute()
    with open(LOCK, "rb") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        wanted = hashlib.sha256(lock_file.read()).hexdigest()
        marker = venv / MARKER
        if (
            marker.is_file()
            and marker.read_text().strip() == wanted
            and (venv / "bin" / "moto_server").exists()
        ):
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        subprocess.run([shutil.which("python3.11") or "python3.11", "-m", "venv", str(venv)], check=True)
        install = [sys.executable, "-m", "uv", "pip", "install", "-q", "-p", str(venv / "bin" / "python")]
        result = subprocess.run(
            [*install, "--compile-bytecode", "-r", str(LOCK)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"installing {LOCK.name} into {venv} failed:\n{result.stderr}")
        marker.write_text(wanted + "\n")
    return venv


@dataclass
class ObjectStoreServer:
    endpoint: str
    process: subprocess.Popen
    variables: dict[str, str]

    def env(self) -> dict[str, str]:
        """The variables a client (mlpipe, s3fs, the AWS CLI, google-cloud-storage) needs to reach it."""
        return dict(self.variables)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3_server(log_path: Path) -> ObjectStoreServer:
    """moto's S3 server on a free port of 127.0.0.1, answering."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    variables = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return _start(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)], endpoint, "/moto-api/", variables, log_path
    )


def start_gcs_server(log_path: Path) -> ObjectStoreServer:
    """gcp-storage-emulator (in memory) on a free port of 127.0.0.1, answering."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = ["gcp-storage-emulator", "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    return _start(argv, endpoint, "/storage/v1/b", {"STORAGE_EMULATOR_HOST": endpoint}, log_path)


def _start(
    argv: list[str], endpoint: str, probe: str, variables: dict[str, str], log_path: Path
) -> ObjectStoreServer:
    venv = ensure_venv()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / argv[0]), *argv[1:]], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + probe, timeout=2).close()
            return ObjectStoreServer(endpoint, process, variables)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{argv[0]} did not start; see {log_path}") from None
            time.sleep(0.1)
