"""Pusher: publish a blessed model as a new TF Serving version, atomically.

``push_destination={"filesystem": {"base_directory": DIR}}`` puts the model's ``Format-Serving``
SavedModel at ``DIR/<version>/`` (the version is the time in seconds, above every existing one).
A serving process may load a version the moment its directory appears, so the copy goes into a
hidden sibling first and is renamed into place (``mlpipe.serving.layout.publish_version``): a
killed push leaves at most a hidden ``.tmp-*`` directory, which the next push removes.

A TFLiteConverter's model is pushed the same way as ``DIR/<version>/model.tflite``.

``version_label="canary"`` (or ``"stable"``) pushes the version under that label: the label goes into
``version_labels`` of the model's entry in ``models.config`` beside the model directory (the model's
name is the directory's name), and the model is served with exactly its labelled versions, so the
canary runs beside stable. ``mlpipe promote`` / ``mlpipe rollback`` finish the rollout
(:mod:`mlpipe.serving.rollout`, ``docs/lifecycle.md``); so does ``promote=True``, which publishes
nothing but moves ``stable`` to the live canary when the canary is this model (e.g. after an
Approval of it).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DefinitionError, ServingError
from mlpipe.io.processes import process_alive
from mlpipe.io.uris import is_remote, join, location
from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import InfraBlessing, Model, ModelBlessing, PushedModel

SERVING_MODEL_DIR = "Format-Serving"
# publish_version's staging directories: .tmp-<version>-<pid of the publishing process>
_STAGING_NAME = re.compile(r"\.tmp-[0-9]+-([0-9]+)", re.ASCII)


class Pusher(Component):
    """Push ``model`` if ``model_blessing`` (and ``infra_blessing``, when wired) say blessed.

    The ``pushed_model`` output records the verdict: custom properties ``pushed`` (1/0) and, when
    pushed, ``pushed_destination`` (the version directory) and ``pushed_version``. An unblessed
    model is not an error: nothing is written and ``pushed`` is 0.
    """

    SPEC = ComponentSpec(
        inputs={
            "model": Model,
            "model_blessing": InputSpec(ModelBlessing, optional=True),
            "infra_blessing": InputSpec(InfraBlessing, optional=True),
        },
        outputs={"pushed_model": PushedModel},
        parameters={
            "push_destination": ParameterSpec(dict),
            "version_label": ParameterSpec(str, default=""),
            "promote": ParameterSpec(bool, default=False),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        base = base_directory(self.id, self.parameters["push_destination"])
        label = self.parameters["version_label"]
        if (label or self.parameters["promote"]) and is_remote(base):
            raise DefinitionError(
                f"{self.id}: version labels live in a models.config beside a local serving directory; "
                f"labelled pushes and promote=True to a bucket ({base}) are not supported yet"
            )
        if label and self.parameters["promote"]:
            raise DefinitionError(
                f"{self.id}: promote=True moves 'stable' to the live canary and publishes nothing; drop version_label"
            )
        if label and not re.fullmatch(r"[a-zA-Z0-9_]+", label):
            raise DefinitionError(
                f"{self.id}: version_label {label!r} must match [a-zA-Z0-9_]+ (TF Serving's labels), e.g. 'canary'"
            )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        from mlpipe.serving import rollout
        from mlpipe.serving.layout import list_versions

        model = ctx.input("model")
        model_blessing, infra_blessing = ctx.input("model_blessing"), ctx.input("infra_blessing")
        assert model is not None  # a required input
        assert model_blessing is None or isinstance(model_blessing, ModelBlessing)
        assert infra_blessing is None or isinstance(infra_blessing, InfraBlessing)
        pushed = ctx.outputs["pushed_model"]
        os.makedirs(pushed.uri, exist_ok=True)
        reason = _reason_not_to_push(model, model_blessing, infra_blessing)
        if reason:
            ctx.log.info("not pushing %s: %s", model.uri, reason)
            pushed.set_custom_property("pushed", 0)
            return
        base = base_directory(ctx.node_id, ctx.parameters["push_destination"])
        if ctx.parameters.get("promote", False):
            _promote(ctx, model, base, pushed)
            return
        label = ctx.parameters.get("version_label", "")  # absent when a test builds the context by hand
        if label:
            rollout.check_label_free(rollout.config_path_for(base), os.path.basename(base), label)
        remove_stale_staging(base, ctx.log)
        version = max(int(time.time()), max(list_versions(base), default=0) + 1)
        version = _publish(model.uri, base, version)
        destination = join(base, str(version))
        pushed.set_custom_property("pushed", 1)
        pushed.set_custom_property("pushed_destination", destination)
        pushed.set_custom_property("pushed_version", str(version))
        ctx.log.info("pushed %s to %s", model.uri, destination)
        if label:
            config = rollout.config_path_for(base)
            rollout.push_label(config, os.path.basename(base), base, version, label)
            pushed.set_custom_property("version_label", label)
            pushed.set_custom_property("model_config_file", config)
            ctx.log.info("labelled version %d %r in %s", version, label, config)


def _promote(ctx: ExecutionContext, model: Artifact, base: str, pushed: Artifact) -> None:
    from mlpipe.serving import rollout

    config = rollout.config_path_for(base)
    version = rollout.promote_model(
        config, os.path.basename(base), os.path.join(model.uri, SERVING_MODEL_DIR)
    )
    if version is None:
        ctx.log.info("not promoting %s: the live canary in %s is another model", model.uri, config)
        pushed.set_custom_property("pushed", 0)
        return
    pushed.set_custom_property("pushed", 1)
    pushed.set_custom_property("pushed_destination", os.path.join(base, str(version)))
    pushed.set_custom_property("pushed_version", str(version))
    pushed.set_custom_property("version_label", rollout.STABLE)
    pushed.set_custom_property("model_config_file", config)
    ctx.log.info("promoted the canary, version %d (%s), to stable in %s", version, model.uri, config)


def base_directory(node_id: str, push_destination: dict[str, Any]) -> str:
    """``push_destination['filesystem']['base_directory']``, or a DefinitionError saying the shape."""
    directory = (push_destination.get("filesystem") or {}).get("base_directory")
    if not isinstance(directory, str) or not directory:
        raise DefinitionError(
            f"{node_id}: push_destination must be {{'filesystem': {{'base_directory': '/path/to/serving/model'}}}}, "
            f"got {push_destination!r}"
        )
    return location(directory, f"{node_id}: push_destination base_directory")


def _publish(model_uri: str, base: str, version: int) -> int:
    """The model's SavedModel as version ``version`` of ``base``, or its ``.tflite`` file when it is
    a TFLiteConverter's output (``<version>/model.tflite``)."""
    from mlpipe.serving.layout import publish_tflite_version, publish_version, tflite_file

    lite = tflite_file(model_uri)
    if lite is not None:
        if is_remote(base):
            raise ServingError(
                f"{base}: pushing a .tflite model to a bucket is not supported yet; give the Pusher a local "
                "base_directory for TFLite models"
            )
        return publish_tflite_version(lite, base, version)
    return publish_version(os.path.join(model_uri, SERVING_MODEL_DIR), base, version, first_free=True)


def _reason_not_to_push(
    model: Artifact, model_blessing: ModelBlessing | None, infra_blessing: InfraBlessing | None
) -> str:
    """Why ``model`` must not be pushed, or ``""`` when it may be."""
    if model_blessing is not None:
        if not model_blessing.blessed:
            approval = model_blessing.get_custom_property("approval")
            if approval is not None:
                return f"its approval says {approval} ({model_blessing.uri})"
            return f"the Evaluator did not bless it ({model_blessing.uri})"
        blessed_id = model_blessing.get_custom_property("current_model_id")
        if blessed_id is not None and model.id is not None and blessed_id != model.id:
            return f"the blessing {model_blessing.uri} is for model {blessed_id}, not for model {model.id}"
    if infra_blessing is not None and not infra_blessing.blessed:
        return f"the InfraValidator did not bless it ({infra_blessing.uri})"
    return ""


def remove_stale_staging(base: str, log: Any) -> None:
    """Delete hidden staging copies left by pushes whose process has died (killed mid-copy)."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return
    for name in names:
        match = _STAGING_NAME.fullmatch(name)
        if match and not process_alive(int(match.group(1))):
            log.info("removing %s, left by an interrupted push", os.path.join(base, name))
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
