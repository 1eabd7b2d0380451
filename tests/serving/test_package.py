"""``import mlpipe.serving`` stays light: no TensorFlow, gRPC or HTTP server until they are used."""

from __future__ import annotations

import subprocess
import sys

REPO = __file__.rsplit("/tests/", 1)[0]


def test_importing_serving_and_its_rest_client_loads_no_tensorflow():
    code = (
        "import sys\n"
        "import mlpipe.serving\n"
        "from mlpipe.serving import Client, ServedModel, publish_version, write_model_config\n"
        "import mlpipe.serving.cli\n"
        "Client('127.0.0.1:1', model='m')\n"
        "print(sorted(m for m in ('tensorflow', 'grpc', 'werkzeug', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
