"""Approval: a person approves or rejects a model before the Pusher may push it.

TFX's Slack component without Slack: placed between the Evaluator and the Pusher, it records a
request (the model, its evaluation, who may approve) and waits until someone answers with
``mlpipe approve RUN_ID NODE [--reject] --comment ...`` (or :func:`mlpipe.approve`), or until the
timeout rejects it. Its output is a ModelBlessing, so it feeds the Pusher's ``model_blessing``: the
Pusher pushes only what was approved. The decision (outcome, who, when, comment) is recorded on
that blessing in ML Metadata and in ``APPROVAL.json`` beside the marker file.

A model the Evaluator did not bless is rejected at once, without asking anyone. A run stopped while
waiting resumes the same request on the next run (see :mod:`mlpipe.io.approvals`); a model once
decided is cached like any other output, so reruns do not ask again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec
from mlpipe.errors import DefinitionError
from mlpipe.io.approvals import (
    NOT_BLESSED,
    TIMED_OUT,
    ApprovalDecision,
    ApprovalRequest,
    mailbox,
    read_decision,
    write_decision,
    write_request,
)
from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import Model, ModelBlessing, ModelEvaluation

DECISION_RECORD = "APPROVAL.json"
MLPIPE = "mlpipe"  # who decides when no person did (a timeout, a model the Evaluator did not bless)
WAITING_LINE_EVERY_SECONDS = 60.0


class Approval(Component):
    """``Approval(model=, model_blessing=evaluator.outputs["blessing"], evaluation=..., approvers=["ana"],
    timeout_seconds=86400, poll_seconds=2)``; feed ``outputs["blessing"]`` to the Pusher.

    ``approvers``: user names allowed to answer (empty: anyone). The timeout counts from the first
    request for this model, across reruns.
    """

    SPEC = ComponentSpec(
        inputs={
            "model": InputSpec(Model),
            "model_blessing": InputSpec(ModelBlessing, optional=True),
            "evaluation": InputSpec(ModelEvaluation, optional=True),
        },
        outputs={"blessing": ModelBlessing},
        parameters={
            "approvers": ParameterSpec(list, default=None, optional=True),
            "timeout_seconds": ParameterSpec(float, default=86400.0),
            "poll_seconds": ParameterSpec(float, default=2.0),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        for name in ("timeout_seconds", "poll_seconds"):
            if not self.parameters[name] > 0:
                raise DefinitionError(f"{self.id}: {name} must be > 0, got {self.parameters[name]!r}")

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        model = ctx.input("model")
        assert model is not None and model.id is not None
        box = mailbox(ctx.node_dir, model.id)
        decision = decision_without_asking(ctx.input("model_blessing"))
        if decision is None:
            request = write_request(
                box,
                new_request(
                    model,
                    ctx.input("model_blessing"),
                    ctx.input("evaluation"),
                    ctx.pipeline_name,
                    ctx.run_id,
                    ctx.node_id,
                    ctx.parameters,
                ),
            )
            decision = _wait_for_decision(ctx, box, request)
        _write_blessing(ctx.outputs["blessing"], decision, model.id)
        ctx.log.info("model %d %s by %s: %s", model.id, decision.outcome, decision.user, decision.comment)
        by = f" by {decision.user}" if decision.user != MLPIPE else ""
        ctx.tell_user(f"{ctx.node_id}: model {model.id} {decision.outcome}{by}")

    @staticmethod
    def waiting_for(
        inputs: dict[str, list[Any]], parameters: dict[str, Any], node_dir: str, pipeline: str, run_id: str,
        node_id: str,
    ) -> str | None:  # fmt: skip
        """The runners' non-blocking look at what ``execute`` would wait for (see
        :mod:`mlpipe.orchestration.waits`): records the request, so ``mlpipe approve`` can answer it,
        and returns the waiting line; None once ``execute`` would finish at once (decided, timed out,
        or not blessed by the Evaluator)."""
        first = {key: artifacts[0] if artifacts else None for key, artifacts in inputs.items()}
        model = first.get("model")
        assert model is not None and model.id is not None
        if decision_without_asking(first.get("model_blessing")) is not None:
            return None
        box = mailbox(node_dir, model.id)
        request = write_request(
            box,
            new_request(
                model,
                first.get("model_blessing"),
                first.get("evaluation"),
                pipeline,
                run_id,
                node_id,
                parameters,
            ),
        )
        now = time.time()
        if read_decision(box) is not None or now >= request.deadline:
            return None
        return waiting_line(node_id, request, now)


def decision_without_asking(evaluated: Any) -> ApprovalDecision | None:
    """A model the Evaluator did not bless is rejected without asking anyone; None: ask."""
    if isinstance(evaluated, ModelBlessing) and not evaluated.blessed:
        return ApprovalDecision(NOT_BLESSED, user=MLPIPE)
    return None


def new_request(
    model: Artifact, evaluated: Any, evaluation: Any, pipeline: str, run_id: str, node_id: str,
    parameters: dict[str, Any],
) -> ApprovalRequest:  # fmt: skip
    """The request an Approval node makes (the node itself, or a runner's wait in front of it, e.g.
    Airflow's reschedule-mode sensor, :mod:`mlpipe.orchestration.waits`)."""
    assert model.id is not None
    return ApprovalRequest(
        model_id=model.id,
        model_uri=model.uri,
        pipeline=pipeline,
        run_id=run_id,
        node_id=node_id,
        approvers=list(parameters["approvers"] or []),
        timeout_seconds=parameters["timeout_seconds"],
        summary=_summary(evaluated, evaluation),
    )


def waiting_line(node_id: str, request: ApprovalRequest, now: float) -> str:
    """What a waiting node tells the user: whose answer it needs and the command to give it."""
    who = ", ".join(request.approvers) if request.approvers else "anyone"
    command = f"mlpipe approve {request.run_id} {node_id} [--reject] --comment '...'"
    left = request.deadline - now
    return f"{node_id}: waiting for approval of model {request.model_id} by {who}: {command} (times out in {left:.0f}s)"


def _wait_for_decision(ctx: ExecutionContext, box: str, request: ApprovalRequest) -> ApprovalDecision:
    """Polls the mailbox until a decision arrives or the request's deadline passes."""
    next_line = 0.0
    while True:
        decision = read_decision(box)
        if decision is not None:
            return decision
        now = time.time()
        if now >= request.deadline:
            return write_decision(
                box,
                ApprovalDecision(
                    TIMED_OUT, user="mlpipe", comment=f"no answer in {request.timeout_seconds:g}s"
                ),
            )
        if now >= next_line:
            line = waiting_line(ctx.node_id, request, now)
            ctx.tell_user(line)
            ctx.log.info(line)
            next_line = now + WAITING_LINE_EVERY_SECONDS
        time.sleep(min(ctx.parameters["poll_seconds"], max(request.deadline - now, 0.0)))


def _summary(evaluated: Any, evaluation: Any) -> dict[str, Any]:
    """What the approver is shown: where the evaluation is and what the Evaluator decided."""
    summary: dict[str, Any] = {}
    if evaluation is not None:
        summary["evaluation_uri"] = evaluation.uri
        summary["evaluation_id"] = evaluation.id
    if isinstance(evaluated, ModelBlessing):
        summary["evaluator_blessed"] = evaluated.blessed
    return summary


def _write_blessing(blessing: Any, decision: ApprovalDecision, model_id: int) -> None:
    os.makedirs(blessing.uri, exist_ok=True)
    open(os.path.join(blessing.uri, "BLESSED" if decision.approved else "NOT_BLESSED"), "w").close()
    with open(os.path.join(blessing.uri, DECISION_RECORD), "w") as f:
        json.dump(asdict(decision), f, indent=1)
    blessing.set_custom_property("blessed", 1 if decision.approved else 0)
    blessing.set_custom_property("current_model_id", model_id)
    blessing.set_custom_property("approval", decision.outcome)
    blessing.set_custom_property("approved_by" if decision.approved else "decided_by", decision.user)
    blessing.set_custom_property("decided_at", int(decision.decided_at))
    blessing.set_custom_property("comment", decision.comment)
