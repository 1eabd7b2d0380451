"""Small pipelines for the Airflow scheduler tests; nothing runs at import (tasks import this module).

- ``approval_pipeline``: make_model -> Approval -> Pusher; the model is a directory with a
  ``saved_model.pb`` (all the Pusher checks), so no TensorFlow runs.
- ``flaky_pipeline``: ``flaky`` fails its first attempt and succeeds when retried (a marker file
  remembers the attempt), then ``broken`` fails every attempt.
"""

from __future__ import annotations

import os

from mlpipe import OutputArtifact, Parameter, Pipeline, component
from mlpipe.components.approval import Approval
from mlpipe.components.pusher import Pusher
from mlpipe.types import Examples, Model


@component
def make_model(model: OutputArtifact[Model]):
    serving = os.path.join(model.uri, "Format-Serving")
    os.makedirs(serving)
    with open(os.path.join(serving, "saved_model.pb"), "wb") as f:
        f.write(b"not a real graph")


def approval_pipeline(name: str, root: str, serving_dir: str) -> Pipeline:
    model = make_model()
    approval = Approval(model=model.outputs["model"], approvers=["ana"], timeout_seconds=1800.0).with_id(
        "approval"
    )
    pusher = Pusher(
        model=model.outputs["model"],
        model_blessing=approval.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": serving_dir}},
    )
    return Pipeline(name, root, [model, approval, pusher])


@component
def flaky(rows: OutputArtifact[Examples], marker: Parameter[str]):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("flaky fails its first attempt")
    rows.split_names = ["train"]


@component
def broken(rows: OutputArtifact[Examples]):
    raise ValueError("broken on purpose")


def flaky_pipeline(name: str, root: str, marker: str) -> Pipeline:
    first = flaky(marker=marker)
    second = broken().after(first)
    return Pipeline(name, root, [first, second])
