"""Real processes: ``python -m mlpipe.serving`` until SIGTERM, and a load test from another process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from mlpipe.serving import Client

REPO = __file__.rsplit("/tests/", 1)[0]

LOAD_CLIENT = """
import json, sys, threading, time
from mlpipe.serving import Client
address, total, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
expected = [[12.5, 11.5]]
errors, done, lock = [], [0], threading.Lock()
def worker(count):
    client = Client(address, model="linear", timeout=30)
    for _ in range(count):
        try:
            answer = client.predict([[1.0, 2.0, 3.0]])
            ok = answer == expected
        except Exception as error:
            ok, answer = False, repr(error)
        with lock:
            done[0] += 1
            if not ok:
                errors.append(str(answer))
started = time.monotonic()
threads = [threading.Thread(target=worker, args=(total // concurrency,)) for _ in range(concurrency)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"done": done[0], "errors": errors[:5], "error_count": len(errors), "seconds": time.monotonic() - started}))
"""


@pytest.mark.e2e
def test_ten_thousand_requests_from_32_concurrent_clients_fail_none(server):
    result = subprocess.run(
        [sys.executable, "-c", LOAD_CLIENT, server.rest_address, "10016", "32"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["done"], report["error_count"], report["errors"]) == (10016, 0, [])


@pytest.mark.e2e
def test_serve_command_serves_until_sigterm(serving_root):
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlpipe.serving",
            "--model_name=taxi", f"--model_base_path={serving_root}/taxi",
            "--port=0", "--rest_api_port=0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
    )  # fmt: skip
    try:
        ready = process.stdout.readline()
        match = re.search(r"REST http://(\S+)", ready)
        assert match, ready + process.stderr.read()
        assert match.group(1).startswith("127.0.0.1:")  # loopback unless --host says otherwise
        client = Client(match.group(1), model="taxi")
        assert client.wait_until_available(timeout=30) == 1
        assert len(client.predict_examples([{"trip_miles": 1.0}])) == 1
        assert re.search(r"gRPC 127\.0\.0\.1:\d+", ready)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read().strip() == "mlpipe serve: stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
