"""The MySQL password given in a pipeline file never reaches a compiled file or a log line.

A pipeline is defined with the password inline (the worst case), run, compiled for every target,
and run again node by node from the compiled IR with the password in MLPIPE_MYSQL_PASSWORD; then
every output and every file the commands wrote is searched for the password.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MLPIPE = [sys.executable, "-m", "mlpipe.cli"]


@pytest.mark.e2e
@pytest.mark.mysql
def test_password_is_in_no_compiled_file_and_no_log_line(tmp_path, mariadb_server):
    database = mariadb_server.create_database("secrets_test")
    password = mariadb_server.password
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    pipeline_file = tmp_path / "team_pipeline.py"
    pipeline_file.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(HERE)!r})
            import four_nodes
            from mlpipe.metadata.config import mysql

            pipeline = four_nodes.create_pipeline(
                {str(tmp_path / "root")!r}, {str(module)!r},
                mysql({mariadb_server.host!r}, {database!r}, {mariadb_server.user!r}, {password!r},
                      {mariadb_server.port}),
            )
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "MLPIPE_MYSQL_PASSWORD"}
    outputs = []

    def mlpipe(*args: str, **extra_env: str) -> None:
        done = subprocess.run(
            [*MLPIPE, *args], cwd=tmp_path, env={**env, **extra_env}, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)

    mlpipe("run", str(pipeline_file))
    mlpipe("compile", str(pipeline_file), "-o", "ir.json")
    mlpipe("compile", str(pipeline_file), "--target", "airflow", "-o", "dag.py")
    mlpipe("compile", str(pipeline_file), "--target", "kubeflow", "-o", "pipeline.yaml")
    mlpipe("run", str(pipeline_file), "--no-cache")
    # the compiled IR still runs a node, with the password from the environment
    mlpipe(
        "run-node",
        "--ir",
        "ir.json",
        "--node",
        "ingest",
        "--run-id",
        "from-ir",
        MLPIPE_MYSQL_PASSWORD=password,
    )

    assert any("MLPIPE_MYSQL_PASSWORD" in out for out in outputs)  # the compile says where it went
    assert not [out for out in outputs if password in out]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != pipeline_file]
    assert {"ir.json", "dag.py", "dag.ir.json", "pipeline.yaml"} <= {p.name for p in written}
    assert any(p.name == "executor.log" for p in written)
    assert [p for p in written if password.encode() in p.read_bytes()] == []
