"""The taxi pipeline with its input data, pipeline root and serving directory in an S3 bucket (moto on
127.0.0.1), then ``mlpipe serve --model_base_path s3://...`` answering a prediction from the bucket."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.objstore import oracle

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "pipelines"))

from taxi import create_pipeline  # noqa: E402

from mlpipe.io.examples import read_examples  # noqa: E402
from mlpipe.metadata.config import sqlite  # noqa: E402
from mlpipe.orchestration.local import LocalDagRunner  # noqa: E402
from mlpipe.serving.client import Client  # noqa: E402


def _upload_sample(bucket: str, rows: int) -> str:
    import botocore.session

    lines = []
    with open(REPO / "examples" / "data" / "chicago_taxi.csv", newline="") as src:
        for _, row in zip(range(rows + 1), csv.reader(src), strict=False):
            lines.append(",".join(f'"{v}"' if "," in v else v for v in row))
    name = bucket.removeprefix("s3://")
    client = botocore.session.get_session().create_client("s3")
    client.put_object(Bucket=name, Key="data/data.csv", Body=("\n".join(lines) + "\n").encode())
    return f"{bucket}/data"


def _first_scorable(records: list[bytes], signature) -> tuple[dict, float]:
    """The first eval record the model scores (some lack features the serving graph needs), as
    JSON-able values (a feature without values left out), and its score."""
    import tensorflow as tf

    for record in records:
        example = tf.train.Example.FromString(record)
        values = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            found = list(getattr(feature, kind).value) if kind else []
            if found:
                values[name] = found[0].decode() if kind == "bytes_list" else found[0]
        try:
            score = signature(examples=tf.constant([record]))["outputs"].numpy()[0, 0]
        except tf.errors.InvalidArgumentError:
            continue
        return values, float(score)
    raise AssertionError("the model scores no eval record")


@pytest.mark.e2e
def test_taxi_on_a_bucket_pushes_there_and_is_served_from_there(tmp_path, bucket):
    import tensorflow as tf

    data = _upload_sample(bucket, 3000)
    pipeline = create_pipeline(
        pipeline_root=f"{bucket}/root",
        serving_model_dir=f"{bucket}/serving/taxi",
        data_root=data,
        train_steps=400,
        eval_steps=50,
        metadata=sqlite(tmp_path / "metadata.sqlite"),
    )
    result = LocalDagRunner(progress=False).run(pipeline)
    for node, outcome in result.results.items():
        for artifacts in outcome.outputs.values():
            for artifact in artifacts:
                assert artifact.uri.startswith(f"{bucket}/root/{node}/"), artifact.uri
                assert oracle.keys(artifact.uri), f"{node}: {artifact.uri} is empty"
    examples = result.results["CsvExampleGen"].outputs["examples"][0]
    assert json.loads(examples.get_custom_property("input_files")) == [f"{data}/data.csv"]
    (pushed,) = result.results["Pusher"].outputs["pushed_model"]
    assert pushed.get_custom_property("pushed") == 1
    version = pushed.get_custom_property("pushed_version")
    assert pushed.get_custom_property("pushed_destination") == f"{bucket}/serving/taxi/{version}"
    stored = oracle.objects(f"{bucket}/serving/taxi/{version}")
    assert "saved_model.pb" in stored and any(k.startswith("variables/") for k in stored)

    # the oracle: TF itself on a copy fetched with botocore, not through mlpipe's download path
    copy = tmp_path / "oracle-copy"
    for key, body in stored.items():
        (copy / key).parent.mkdir(parents=True, exist_ok=True)
        (copy / key).write_bytes(body)
    loaded = tf.saved_model.load(str(copy))
    eval_split = tmp_path / "oracle-examples"
    for key, body in oracle.objects(f"{examples.uri}/Split-eval").items():
        (eval_split / key).parent.mkdir(parents=True, exist_ok=True)
        (eval_split / key).write_bytes(body)
    trip, expected = _first_scorable(read_examples(str(eval_split)), loaded.signatures["serving_default"])

    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlpipe.serving", "--model_name=taxi",
            f"--model_base_path={bucket}/serving/taxi", "--port=0", "--rest_api_port=0",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        ready = server.stdout.readline()
        match = re.search(r"REST http://(\S+)", ready)
        assert match, ready + server.stderr.read()
        client = Client(match.group(1), model="taxi")
        assert client.wait_until_available(timeout=60) == int(version)
        [[score]] = client.predict_examples([trip])
        assert score == pytest.approx(expected, abs=1e-6)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
