"""make_model -> evaluate (blessed per $APPROVAL_EVALUATOR_BLESSES) -> Approval -> Pusher.

The model is a directory with a ``saved_model.pb`` (all the Pusher checks), so no TensorFlow runs.
make_model appends to $APPROVAL_CALLS_LOG, so tests see whether a rerun retrained.
"""

from __future__ import annotations

import os

from mlpipe import InputArtifact, OutputArtifact, Pipeline, component
from mlpipe.components.approval import Approval
from mlpipe.components.pusher import Pusher
from mlpipe.types import Model, ModelBlessing


@component
def make_model(model: OutputArtifact[Model]):
    with open(os.environ["APPROVAL_CALLS_LOG"], "a") as f:
        f.write("make_model\n")
    serving = os.path.join(model.uri, "Format-Serving")
    os.makedirs(serving)
    with open(os.path.join(serving, "saved_model.pb"), "wb") as f:
        f.write(b"not a real graph")


@component
def evaluate(model: InputArtifact[Model], blessing: OutputArtifact[ModelBlessing]):
    blessed = os.environ.get("APPROVAL_EVALUATOR_BLESSES", "1") == "1"
    open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    blessing.set_custom_property("blessed", int(blessed))


model = make_model()
evaluation = evaluate(model=model.outputs["model"])
approval = Approval(
    model=model.outputs["model"],
    model_blessing=evaluation.outputs["blessing"],
    approvers=["ana", "bo"],
    timeout_seconds=float(os.environ.get("APPROVAL_TIMEOUT", "300")),
    poll_seconds=0.05,
).with_id("approval")
pusher = Pusher(
    model=model.outputs["model"],
    model_blessing=approval.outputs["blessing"],
    push_destination={"filesystem": {"base_directory": os.environ["APPROVAL_SERVING_DIR"]}},
)
pipeline = Pipeline("approval_demo", os.environ["APPROVAL_ROOT"], [model, evaluation, approval, pusher])
