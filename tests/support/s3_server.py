"""A real S3-compatible server on 127.0.0.1 for tests: moto's server mode, in a virtualenv of its own.

moto pins botocore/boto3 versions that need not match mlpipe's (s3fs brings aiobotocore, which pins
botocore tightly), so it gets its own venv, built once from ``requirements-s3-server.lock`` and
kept between runs (a marker holds the lock's hash), as tests/support/airflow_env.py does for
Airflow. The server speaks the S3 REST protocol over HTTP; mlpipe reaches it exactly as it would
reach AWS or MinIO, through ``AWS_ENDPOINT_URL`` and the usual credential variables.
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
LOCK = REPO / "requirements-s3-server.lock"
MARKER = ".mlpipe-s3-server-lock.sha256"
ACCESS_KEY, SECRET_KEY = "mlpipe-test-key", "mlpipe-test-secret-do-not-log"


def ensure_venv(path: Path | None = None) -> Path:
    """The venv with the locked moto installed (``$MLPIPE_S3_SERVER_VENV``, else ``.s3-server-venv``)."""
    venv = (path or Path(os.environ.get("MLPIPE_S3_SERVER_VENV") or REPO / ".s3-server-venv")).absolute()
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
class S3Server:
    endpoint: str
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """The variables a client (mlpipe, s3fs, the AWS CLI) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

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


def start_s3_server(log_path: Path) -> S3Server:
    """Start moto's S3 server on a free port of 127.0.0.1 and wait until it answers."""
    venv = ensure_venv()
    port = _free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return S3Server(endpoint, process)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto_server did not start; see {log_path}") from None
            time.sleep(0.1)
