"""An executor that reports bad data keeps its outputs published while the run stops."""

from __future__ import annotations

import json
import os

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe import InputArtifact, OutputArtifact, Pipeline, component
from mlpipe.errors import ValidationFailure
from mlpipe.metadata.queries import artifacts
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from mlpipe.orchestration.run_result import RunError
from mlpipe.types import ExampleAnomalies, Examples


@component
def produce(examples: OutputArtifact[Examples]):
    with open(os.path.join(examples.uri, "rows.json"), "w") as f:
        json.dump([1, -5, 3], f)


@component
def check(examples: InputArtifact[Examples], anomalies: OutputArtifact[ExampleAnomalies]):
    rows = json.load(open(os.path.join(examples.uri, "rows.json")))
    bad = [r for r in rows if r < 0]
    with open(os.path.join(anomalies.uri, "anomalies.json"), "w") as f:
        json.dump(bad, f)
    if bad:
        raise ValidationFailure(f"{len(bad)} negative value(s): {bad} (see {anomalies.uri})")


@component
def after(anomalies: InputArtifact[ExampleAnomalies], examples: OutputArtifact[Examples]):
    pass


def test_anomalies_published_execution_failed_downstream_not_run(tmp_path):
    p = produce()
    c = check(examples=p.outputs["examples"])
    a = after(anomalies=c.outputs["anomalies"])
    pipeline = Pipeline("validate", tmp_path / "root", [p, c, a])
    with pytest.raises(RunError) as info:
        LocalDagRunner(progress=False).run(pipeline)
    assert "node 'check' failed: 1 negative value(s): [-5]" in str(info.value)
    assert info.value.result.not_run == ["after"]

    store = MetadataStore(pipeline.metadata)
    (anomalies,) = artifacts(store, "ExampleAnomalies")
    assert json.load(open(os.path.join(anomalies.uri, "anomalies.json"))) == [-5]
    # the message points at the published anomalies, not at the staging dir they were written in
    assert f"(see {anomalies.uri})" in str(info.value) and ".staging" not in str(info.value)
    (execution,) = [
        e
        for e in store.db.mlmd.get_executions()
        if e.custom_properties["__node_id__"].string_value == "check"
    ]
    assert execution.last_known_state == pb.Execution.FAILED
    # a FAILED execution is never a cache hit: the rerun validates again
    with pytest.raises(RunError):
        LocalDagRunner(progress=False).run(pipeline)
    assert len(artifacts(store, "ExampleAnomalies")) == 2
