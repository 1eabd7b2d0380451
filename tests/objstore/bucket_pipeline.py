"""rows -> train -> Pusher, with the root and the serving directory in a bucket; no TensorFlow.

``train`` writes a "model" of ``BUCKET_MODEL_FILES`` variable shards plus ``saved_model.pb``, whose
bytes depend on the rows, so a test can tell from the bucket alone which run pushed what and whether
an artifact is whole. Every executor appends its node name to ``$MLPIPE_TEST_CALLS_LOG``.
"""

from __future__ import annotations

import json
import os

from mlpipe import InputArtifact, OutputArtifact, Parameter, Pipeline, component
from mlpipe.components.pusher import Pusher
from mlpipe.metadata.config import from_environment
from mlpipe.types import Examples, Model


def _record_call(name: str) -> None:
    with open(os.environ["MLPIPE_TEST_CALLS_LOG"], "a") as f:
        f.write(name + "\n")


def expected_rows(n: int) -> list[float]:
    return [float(i * i) for i in range(n)]


def expected_model_files(n: int, files: int) -> dict[str, bytes]:
    """Relative path -> bytes of the model ``train`` writes for ``n`` rows (the tests' oracle)."""
    out = {
        f"Format-Serving/variables/shard-{i:05d}": (f"{n}:{i}:" + "x" * 512).encode() for i in range(files)
    }
    out["Format-Serving/saved_model.pb"] = json.dumps({"sum": sum(expected_rows(n))}).encode()
    return out


@component
def rows(examples: OutputArtifact[Examples], n: Parameter[int] = 4):
    _record_call("rows")
    with open(os.path.join(examples.uri, "values.json"), "w") as f:
        json.dump([float(i * i) for i in range(n)], f)


@component
def train(examples: InputArtifact[Examples], model: OutputArtifact[Model], files: Parameter[int] = 3):
    _record_call("train")
    with open(os.path.join(examples.uri, "values.json")) as f:
        values = json.load(f)
    for relative, data in expected_model_files(len(values), files).items():
        path = os.path.join(model.uri, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def create_pipeline() -> Pipeline:
    a = rows(n=int(os.environ.get("BUCKET_ROWS", "4")))
    b = train(examples=a.outputs["examples"], files=int(os.environ.get("BUCKET_MODEL_FILES", "3")))
    c = Pusher(
        model=b.outputs["model"],
        push_destination={"filesystem": {"base_directory": os.environ["BUCKET_SERVING"]}},
    )
    return Pipeline(
        os.environ.get("BUCKET_PIPELINE_NAME", "bucket"),
        os.environ["BUCKET_ROOT"],
        [a, b, c],
        metadata=from_environment(None),
    )
