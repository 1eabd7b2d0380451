"""Whether a node's ``Cond`` predicates hold, read from what its upstream nodes recorded in MLMD.

The launcher asks just before a node would run, on every runner, so a local run, a Beam step, an
Airflow task and a Kubeflow task decide alike. The answer is a reason to skip (naming the value that
made a predicate false) or None. A value that is not there — no artifact at that index, a property
never set — makes its comparison unknown rather than failing the run (the first run of a pipeline
has no blessed model), and a predicate that is unknown skips the node: "cannot hold: ... has no
'blessed'" says so. Values that cannot be compared (a str with an int) are a mistake in the
pipeline and fail the node.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from mlpipe.dsl.condition import COMPARISONS, describe
from mlpipe.errors import ComponentError
from mlpipe.ir import NodeIR, PipelineIR
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.inputs import artifacts_available, producer_executions
from mlpipe.types.artifact import Artifact
from mlpipe.types.registry import resolve_type

_MISSING = object()
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip

ReadChannel = Callable[[str, str], list[Artifact]]


def unmet_condition(store: MetadataStore, ir: PipelineIR, node: NodeIR, run_id: str) -> str | None:
    """Why ``node`` must be skipped in run ``run_id``, or None when all its predicates hold.

    Raises UpstreamSkipped when a predicate reads a node whose newest outcome is a skip.
    """
    if not node.conditions:
        return None
    return first_unmet(node, recorded_outputs(store, ir, run_id))


def recorded_outputs(store: MetadataStore, ir: PipelineIR, run_id: str) -> ReadChannel:
    """Reads a channel as input resolution does: the producer's outputs in this run, else its newest."""

    def read_channel(producer: str, key: str) -> list[Artifact]:
        classes = {key: resolve_type(ir.node(producer).outputs[key])}  # value artifacts decode by type
        for execution in producer_executions(store, ir, producer, run_id):
            outputs = store.output_artifacts(execution.id, classes).get(key, [])
            if artifacts_available(outputs):
                return outputs
        return []

    return read_channel


def first_unmet(node: NodeIR, read_channel: ReadChannel) -> str | None:
    """The skip reason for the first of ``node``'s predicates that is false or cannot be decided (a
    value is missing), reading channels with ``read_channel(producer, key)``; None when all hold."""
    for predicate in node.conditions:
        holds, why = _evaluate(node, predicate, read_channel)
        if holds is None:
            return f"condition {describe(predicate)} cannot hold: {why}"
        if not holds:
            return f"condition {describe(predicate)} is false: {why}"
    return None


def _evaluate(node: NodeIR, predicate: dict[str, Any], read_channel: ReadChannel) -> tuple[bool | None, str]:
    """(holds — None when a value it needs is missing —, the values that decided it).

    Missing values are unknown, not false, through ``~``, ``&`` and ``|`` (SQL's three-valued
    logic): ``~(x == 'good')`` must not hold when ``x`` was never set. Only True runs the node.
    """
    op = predicate["op"]
    if op == "not":
        holds, why = _evaluate(node, predicate["args"][0], read_channel)
        return (None if holds is None else not holds), why
    if op in ("and", "or"):
        deciding = op == "or"  # the first true part decides an 'or', the first false part an 'and'
        outcome: bool | None = not deciding
        whys: list[str] = []
        for arg in predicate["args"]:
            holds, why = _evaluate(node, arg, read_channel)
            if holds is deciding:
                return holds, why
            if holds is None:
                outcome = None
            whys.append(why)
        return outcome, "; ".join(whys)
    assert op in COMPARISONS, op
    left, left_why = _operand(predicate["left"], read_channel)
    right, right_why = _operand(predicate["right"], read_channel)
    why = ", ".join(w for w in (left_why, right_why) if w)
    if left is _MISSING or right is _MISSING:
        return None, why
    try:
        return bool(_COMPARE[op](left, right)), why
    except TypeError:
        raise ComponentError(
            node.id,
            f"condition {describe(predicate)}: cannot compare {left!r} ({type(left).__name__}) with "
            f"{right!r} ({type(right).__name__})",
        ) from None


def _operand(operand: dict[str, Any], read_channel: ReadChannel) -> tuple[Any, str]:
    """(value or _MISSING, what it was, for the skip reason; empty for a literal)."""
    if "literal" in operand:
        return operand["literal"], ""
    ref = operand["artifact"]
    channel = f"{ref['producer']}.{ref['key']}"
    artifacts = read_channel(ref["producer"], ref["key"])
    if ref["index"] >= len(artifacts):
        return _MISSING, f"{channel} has {len(artifacts)} artifact(s)"
    artifact = artifacts[ref["index"]]
    index = f"[{ref['index']}]" if ref["index"] else ""
    shown = f"{channel}{index} (artifact {artifact.id})"
    if ref["read"] == "value":
        value = artifact.read()
        return value, f"{shown} is {value!r}"
    if ref["read"] == "property":
        value = artifact.get_property(ref["name"], _MISSING)
    else:
        value = artifact.get_custom_property(ref["name"], _MISSING)
    if value is _MISSING:
        return _MISSING, f"{shown} has no {ref['name']!r}"
    return value, f"{shown} has {ref['name']} = {value!r}"
