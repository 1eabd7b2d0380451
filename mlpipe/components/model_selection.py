"""Choosing one model among several candidates that one Evaluator execution judged on the same data.

``Evaluator(models={"wide_deep": ..., "linear": ...}, model_selection={"metric": "auc"})``
evaluates every candidate in one TFMA run (same examples, same slices, same thresholds, the same
baseline), blesses each on its own thresholds, and picks the blessed candidate with the best value
of ``metric`` on the overall slice. This module holds that rule and how its outcome is recorded;
it needs no TensorFlow, so the rule is tested without training anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlpipe.errors import DefinitionError

# A candidate ``name`` is wired as the Evaluator input ``candidate_<name>``.
CANDIDATE_INPUT_PREFIX = "candidate_"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}", re.ASCII)


@dataclass(frozen=True)
class ModelSelection:
    """``{"metric": "auc", "higher_is_better": True}``: the TFMA metric name (as in the evaluation's
    metric keys: ``auc``, ``binary_accuracy``, ``loss`` ...) compared on the overall slice."""

    metric: str
    higher_is_better: bool = True

    @staticmethod
    def from_dict(owner: str, rule: Any) -> ModelSelection:
        if not isinstance(rule, Mapping) or not isinstance(rule.get("metric"), str) or not rule["metric"]:
            raise DefinitionError(
                f"{owner}: model_selection must be {{'metric': 'auc', 'higher_is_better': True}}, got {rule!r}"
            )
        unknown = set(rule) - {"metric", "higher_is_better"}
        if unknown:
            raise DefinitionError(
                f"{owner}: model_selection has unknown key(s) {sorted(unknown)}; it takes 'metric' and "
                f"'higher_is_better'"
            )
        higher = rule.get("higher_is_better", True)
        if not isinstance(higher, bool):
            raise DefinitionError(
                f"{owner}: model_selection['higher_is_better'] must be True or False, got {higher!r}"
            )
        return ModelSelection(rule["metric"], higher)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's outcome: its own blessing and its value of the selection metric."""

    name: str
    model_id: int | None
    model_uri: str
    blessed: bool
    value: float
    failures: str = ""  # the thresholds it missed, when not blessed


def check_candidate_names(owner: str, names: Sequence[Any]) -> list[str]:
    """The names, or a DefinitionError: at least two, identifier-like (TFMA model names), unique."""
    names = list(names)
    if len(names) < 2:
        raise DefinitionError(
            f"{owner}: models= takes two or more candidates by name, got {names!r}; for one model pass model="
        )
    for name in names:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise DefinitionError(
                f"{owner}: candidate name {name!r} must be a letter followed by letters, digits or '_' "
                f"(it names the model in TFMA's metric keys)"
            )
    return names


def select(results: Sequence[CandidateResult], rule: ModelSelection) -> CandidateResult | None:
    """The blessed candidate with the best metric value; on a tie the one declared first; None
    when no candidate is blessed."""
    blessed = [r for r in results if r.blessed]
    if not blessed:
        return None
    sign = 1.0 if rule.higher_is_better else -1.0
    return max(blessed, key=lambda r: sign * r.value)  # max keeps the first of equals


def best_unblessed(results: Sequence[CandidateResult], rule: ModelSelection) -> CandidateResult:
    """The output when nothing is blessed: the best by the metric, so the record still says which
    came closest (its blessing says NOT_BLESSED and no Pusher pushes it)."""
    sign = 1.0 if rule.higher_is_better else -1.0
    return max(results, key=lambda r: sign * r.value)


def candidates_table(results: Sequence[CandidateResult], rule: ModelSelection, selected: str | None) -> str:
    """candidate | model id | <metric> | blessed | selected, one row per candidate, declared order."""
    header = ("candidate", "model id", rule.metric, "blessed", "selected")
    rows = [header] + [
        (
            r.name,
            "" if r.model_id is None else str(r.model_id),
            f"{r.value:.4f}",
            "yes" if r.blessed else f"no ({r.failures})" if r.failures else "no",
            "<-" if r.name == selected else "",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def record_candidates(
    artifact: Any, results: Sequence[CandidateResult], rule: ModelSelection, selected: str | None
) -> None:
    """Names and metrics of every candidate as custom properties (readable with ``mlpipe show``):
    ``candidates`` (JSON list), ``candidate_<name>_<metric>``, ``candidate_<name>_blessed``,
    ``selected_candidate`` and ``model_selection``."""
    artifact.set_custom_property("candidates", json.dumps([asdict(r) for r in results]))
    artifact.set_custom_property("model_selection", json.dumps(rule.to_dict()))
    artifact.set_custom_property("selected_candidate", selected or "")
    for r in results:
        artifact.set_custom_property(f"candidate_{r.name}_{rule.metric}", r.value)
        artifact.set_custom_property(f"candidate_{r.name}_blessed", 1 if r.blessed else 0)
