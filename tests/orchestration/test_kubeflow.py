"""KubeflowDagRunner: the spec the real kfp compiler writes, and that pipeline run by ``kfp.local``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components, dsl, local
from kfp.pipeline_spec import pipeline_spec_pb2

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.config import mysql
from mlpipe.metadata.queries import ExecutionInfo, list_runs, run_executions
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.kubeflow import KubeflowDagRunner
from tests.orchestration import four_nodes

NODES = ["ingest", "scale", "apply_module", "summarize"]
GOOD_MODULE = "def transform(v):\n    return v + 1\n"

# kfp.local warns when an image name lacks "python"; the subprocess runner ignores the image anyway
pytestmark = pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")


def _pipeline(tmp_path: Path, module_text: str) -> Pipeline:
    module = tmp_path / "user_module.py"
    module.write_text(module_text)
    return four_nodes.create_pipeline(str(tmp_path / "root"), str(module))


def _runs(pipeline: Pipeline) -> dict[str, list[ExecutionInfo]]:
    """Executions per mlpipe run id, oldest run first (the KFP run id is random under kfp.local)."""
    store = MetadataStore(pipeline.metadata)
    try:
        runs = sorted(list_runs(store), key=lambda r: r.created_ms)
        return {r.run_id: run_executions(store, r.run_id) for r in runs}
    finally:
        store.close()


@pytest.fixture
def kfp_local(tmp_path: Path) -> None:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp-local"))


def test_spec_has_one_task_per_node_with_upstream_dependencies_no_kfp_cache_and_retries(tmp_path):
    pipeline = _pipeline(tmp_path, GOOD_MODULE)
    runner = KubeflowDagRunner(
        image="registry.example/mlpipe:1", env={"MLPIPE_METADATA": "mysql://u@db:3306/mlmd"}, retries=2
    )
    path = runner.compile(pipeline, tmp_path / "pipeline.yaml")

    with open(path) as f:  # strict: an unknown field fails the parse
        spec = json_format.ParseDict(yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "four-nodes"
    tasks = spec.root.dag.tasks
    assert {name: list(t.dependent_tasks) for name, t in tasks.items()} == {
        "ingest": [],
        "scale": ["ingest"],
        "apply-module": ["scale"],
        "summarize": ["apply-module"],
    }
    assert sorted(t.task_info.name for t in tasks.values()) == sorted(NODES)
    for task in tasks.values():
        assert task.HasField("caching_options") and not task.caching_options.enable_cache
        assert task.retry_policy.max_retry_count == 2
        params = task.inputs.parameters
        assert params["node_id"].runtime_value.constant.string_value == task.task_info.name
        assert params["run_id"].runtime_value.constant.string_value == dsl.PIPELINE_JOB_ID_PLACEHOLDER
        assert params["ir_json"].component_input_parameter == "mlpipe_ir"

    embedded = spec.root.input_definitions.parameters["mlpipe_ir"].default_value.string_value
    assert PipelineIR.from_dict(json.loads(embedded)) == pipeline.compile()
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert len(executors) == 4
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "registry.example/mlpipe:1"
        assert container["env"] == [{"name": "MLPIPE_METADATA", "value": "mysql://u@db:3306/mlmd"}]
        assert "pip install" not in " ".join(container["command"])  # kfp comes with the image


def test_spec_leaves_the_mysql_password_out_of_the_embedded_ir(tmp_path):
    module = tmp_path / "user_module.py"
    module.write_text(GOOD_MODULE)
    pipeline = four_nodes.create_pipeline(
        str(tmp_path / "root"), str(module), metadata=mysql("db", "mlmd", "mlpipe", password="s3cret")
    )
    path = KubeflowDagRunner().compile(pipeline, tmp_path / "pipeline.yaml")
    assert "s3cret" not in Path(path).read_text()
    spec = yaml.safe_load(Path(path).read_text())
    embedded = json.loads(spec["root"]["inputDefinitions"]["parameters"]["mlpipe_ir"]["defaultValue"])
    assert embedded["metadata"] == {
        "kind": "mysql",
        "host": "db",
        "port": 3306,
        "database": "mlmd",
        "user": "mlpipe",
    }


def test_compile_refuses_a_non_yaml_path(tmp_path):
    with pytest.raises(DefinitionError, match=r"must be a \.yaml file"):
        KubeflowDagRunner().compile(_pipeline(tmp_path, GOOD_MODULE), tmp_path / "pipeline.json")


@pytest.mark.e2e
def test_kfp_local_runs_each_node_once_and_a_rerun_from_an_ir_file_is_fully_cached(
    tmp_path, kfp_local, monkeypatch
):
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(calls))  # task subprocesses inherit it
    pipeline = _pipeline(tmp_path, GOOD_MODULE)

    KubeflowDagRunner().build(pipeline)()
    ((first_id, first),) = _runs(pipeline).items()
    assert [(e.node_id, e.state) for e in first] == [(n, "COMPLETE") for n in NODES]
    (total,) = first[-1].outputs["total"]
    assert (Path(total.uri) / "value").read_text() == "25.0"
    assert calls.read_text().split() == NODES

    ir_file = tmp_path / "image" / "ir.json"  # the second run reads the IR as if built into the image
    pipeline.compile().save(ir_file)
    KubeflowDagRunner(ir_path_in_container=str(ir_file)).build(pipeline)()
    runs = _runs(pipeline)
    second = [executions for run_id, executions in runs.items() if run_id != first_id]
    assert len(runs) == 2 and len(second) == 1
    assert [(e.node_id, e.state) for e in second[0]] == [(n, "CACHED") for n in NODES]
    assert second[0][-1].outputs["total"][0].id == total.id
    assert calls.read_text().split() == NODES  # no executor ran again


@pytest.mark.e2e
def test_failing_node_fails_the_kfp_run_with_the_component_error_in_the_task_log(tmp_path, kfp_local, capfd):
    pipeline = _pipeline(tmp_path, "def transform(v):\n    raise KeyError('fare')\n")
    path = KubeflowDagRunner().compile(pipeline, tmp_path / "pipeline.yaml")

    with pytest.raises(
        RuntimeError, match=r"finished with status .*FAILURE.*Inner task failed: .*apply-module"
    ):
        components.load_component_from_file(path)()  # the compiled YAML itself, not the Python function

    assert "mlpipe: node 'apply_module' failed: KeyError: 'fare'" in capfd.readouterr().out
    ((_, executions),) = _runs(pipeline).items()
    assert [(e.node_id, e.state) for e in executions] == [
        ("ingest", "COMPLETE"),
        ("scale", "COMPLETE"),
        ("apply_module", "FAILED"),
    ]
    assert "KeyError: 'fare'" in executions[-1].error
