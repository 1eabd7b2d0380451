"""The mlpipe command, as a user types it."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from mlpipe.cli import main
from mlpipe.ir import PipelineIR

PIPELINE_FILE = str(Path(__file__).parent / "orchestration" / "four_nodes.py")


@pytest.fixture
def env(tmp_path, monkeypatch):
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    monkeypatch.setenv("FOUR_NODES_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("FOUR_NODES_MODULE", str(module))
    monkeypatch.delenv("MLPIPE_METADATA", raising=False)
    return tmp_path


def test_run_then_query_commands(env, capsys):
    db = str(env / "metadata.sqlite")
    assert main(["run", PIPELINE_FILE]) == 0
    assert main(["run", PIPELINE_FILE, "--only", "summarize", "--no-cache"]) == 0
    out = capsys.readouterr()
    assert "[mlpipe] run" in out.err and "4 complete" in out.err and "1 complete" in out.err
    first_line = next(line for line in out.err.splitlines() if line.startswith("[mlpipe] scale: COMPLETE in"))
    assert first_line.endswith("s")  # a first run's nodes all ran for the same reason: not repeated
    assert "[mlpipe] summarize: COMPLETE in" in out.err and "(caching is off)" in out.err

    assert main(["runs", "--metadata", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "PIPELINE", "STARTED", "EXECUTIONS"]
    assert len(lines) == 3 and "1 complete" in lines[1] and "4 complete" in lines[2]
    first_run = lines[2].split()[0]

    assert main(["show", first_run, "--metadata", db]) == 0
    show = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in show[1:]] == [
        ["ingest", "COMPLETE"], ["scale", "COMPLETE"], ["apply_module", "COMPLETE"], ["summarize", "COMPLETE"],
    ]  # fmt: skip
    assert show[0].split() == ["NODE", "STATE", "TIME", "EXECUTION", "OUTPUTS", "WHY", "ERROR"]
    assert all(line.endswith("no earlier successful execution of this node") for line in show[1:])

    assert main(["artifacts", "--type", "Float", "-p", PIPELINE_FILE]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3  # header + two totals

    assert main(["lineage", "1", "--metadata", db]) == 0
    lineage = capsys.readouterr().out
    assert "produced by: ingest" in lineage and "upstream: none" in lineage
    assert lineage.count("Float") == 2 and lineage.count("Examples") == 3  # itself + scaled + transformed

    assert main(["show", "1", "--metadata", db]) == 0
    shown = capsys.readouterr().out
    assert "Examples" in shown and "split_names" in shown and "train" in shown

    svg = env / "dag.svg"
    assert main(["show", "--dag", PIPELINE_FILE, "-o", str(svg)]) == 0
    assert f"wrote {svg} (run " in capsys.readouterr().out
    import xml.etree.ElementTree as ET

    nodes = [g for g in ET.fromstring(svg.read_text()).iter() if g.get("class") == "node"]
    assert sorted(g.get("data-node") for g in nodes) == sorted(
        ["ingest", "scale", "apply_module", "summarize"]
    )
    assert main(["show", "--dag", PIPELINE_FILE]) == 0
    assert "apply_module" in capsys.readouterr().out


def test_compile_writes_ir_a_user_can_load(env, capsys):
    out = env / "ir.json"
    assert main(["compile", PIPELINE_FILE, "-o", str(out)]) == 0
    ir = PipelineIR.load(out)
    assert [n.id for n in ir.nodes] == ["ingest", "scale", "apply_module", "summarize"]
    assert ir.node("apply_module").parameters["module_file"].endswith("user_module.py")


def test_compile_for_kubeflow_writes_a_pipeline_spec(env, capsys):
    import yaml
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    out = env / "p.yaml"
    assert main(["compile", PIPELINE_FILE, "-o", str(out), "--target", "kubeflow", "--env", "A=b"]) == 0
    spec = json_format.ParseDict(yaml.safe_load(out.read_text()), pipeline_spec_pb2.PipelineSpec())
    assert sorted(spec.root.dag.tasks) == ["apply-module", "ingest", "scale", "summarize"]
    assert main(["compile", PIPELINE_FILE, "-o", str(out), "--env", "A=b"]) == 1
    assert "apply to --target kubeflow only" in capsys.readouterr().err
    assert main(["compile", PIPELINE_FILE, "-o", str(out), "--target", "kubeflow", "--env", "oops"]) == 1
    assert "--env takes KEY=VALUE, got 'oops'" in capsys.readouterr().err


def test_compile_for_airflow_writes_a_dag_and_its_ir(env, capsys):
    dag = env / "dags" / "four.py"
    argv = ["compile", PIPELINE_FILE, "-o", str(dag), "--target", "airflow", "--schedule", "@daily"]
    assert main([*argv, "--start-date", "2026-01-01", "--retries", "2"]) == 0
    assert "wrote DAG 'four_nodes'" in capsys.readouterr().out
    text = dag.read_text()
    compile(text, str(dag), "exec")
    assert "import mlpipe" not in text and "@daily" in text and "2026" in text
    assert [n.id for n in PipelineIR.load(next((env / "dags").glob("*.json"))).nodes][-1] == "summarize"
    assert main(["compile", PIPELINE_FILE, "-o", str(dag), "--schedule", "@daily"]) == 1
    assert "apply to --target airflow only" in capsys.readouterr().err
    more = ["--end-date", "2026-01-03", "--max-active-runs", "1", "--retry-delay", "7"]
    assert main([*argv, "--start-date", "2026-01-01", *more, "--on-failure-callback", "alerts:page"]) == 0
    text = dag.read_text()
    assert "end_date=datetime(2026, 1, 3, tzinfo=timezone.utc)" in text and "max_active_runs=1," in text
    assert "timedelta(seconds=7)" in text and "from alerts import page as on_failure_callback" in text
    assert main(["compile", PIPELINE_FILE, "-o", str(dag), "--max-active-runs", "1"]) == 1


def test_errors_are_one_clear_line_and_exit_1(env, capsys):
    assert main(["runs", "--metadata", str(env / "nope.sqlite")]) == 1
    assert "no metadata store at" in capsys.readouterr().err
    assert main(["run", str(env / "missing.py")]) == 1
    assert "missing.py does not exist" in capsys.readouterr().err
    assert main(["run", PIPELINE_FILE, "--only", "nope"]) == 1
    assert "has no node 'nope'" in capsys.readouterr().err


def test_failed_run_prints_log_tail_and_resume_command(env, capsys):
    (env / "user_module.py").write_text("def transform(v):\n    raise RuntimeError('boom')\n")
    assert main(["run", PIPELINE_FILE]) == 1
    err = capsys.readouterr().err
    assert "node 'apply_module' failed: RuntimeError: boom" in err
    assert "not run: summarize" in err
    assert "last lines of apply_module's log" in err and "Traceback" in err
    assert f"resume: mlpipe run {PIPELINE_FILE}" in err


def test_import_mlpipe_and_help_stay_light():
    code = "import mlpipe, mlpipe.cli; mlpipe.Pipeline; mlpipe.LocalDagRunner; mlpipe.types.Examples"
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if "|" in line}
    heavy = {
        "tensorflow",
        "apache_beam",
        "tensorflow_data_validation",
        "ml_metadata",
        "kfp",
        "airflow",
    } & imported
    assert not heavy, heavy
    assert "mlpipe.dsl.pipeline" in imported  # the check really saw mlpipe's imports
    cpu_seconds = []  # CPU, not wall time: the suite runs beside other workers (wall time: bench/startup.py)
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "mlpipe.cli", "--help"], capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seconds.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    assert min(cpu_seconds) < 0.5, cpu_seconds


def test_serve_help_shows_the_serving_flags():
    res = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "serve", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0
    for flag in (
        "--model_name",
        "--model_base_path",
        "--model_config_file",
        "--rest_api_port",
        "--enable_batching",
    ):
        assert flag in res.stdout
