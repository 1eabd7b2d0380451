"""Resolver nodes: pick existing artifacts from ML Metadata instead of running code.

    baseline = Resolver(strategy="latest_blessed_model", model=Model, model_blessing=ModelBlessing)
    evaluator = Evaluator(..., baseline_model=baseline.outputs["model"])

Each keyword names an output; its value is an artifact type (any artifact of that type recorded in
this pipeline) or a channel (artifacts of that producer, from any run). A resolver may find
nothing (the first run has no blessed model), so what consumes it must be an optional input.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import Artifact
from mlpipe.types.channel import Channel
from mlpipe.types.registry import type_ref

STRATEGIES = {
    "latest_artifact": "the newest LIVE artifact for each output",
    "latest_blessed_model": "the newest Model whose ModelBlessing says blessed (outputs: model, model_blessing)",
}


class Resolver(Component):
    """A node whose outputs are chosen from ML Metadata by a named strategy (never cached)."""

    VERSION: ClassVar[str] = "1"

    def __init__(self, strategy: str, **inputs: Any):
        self.id = "Resolver"
        self._upstream_extra = []
        if strategy not in STRATEGIES:
            options = "; ".join(f"'{k}': {v}" for k, v in STRATEGIES.items())
            raise DefinitionError(f"Resolver: unknown strategy {strategy!r}; choose one of {options}")
        if not inputs:
            raise DefinitionError("Resolver: name at least one output, e.g. model=Model")
        self.inputs: dict[str, Channel] = {}
        types: dict[str, type[Artifact]] = {}
        for key, value in inputs.items():
            if isinstance(value, Channel):
                self.inputs[key], types[key] = value, value.type
            elif isinstance(value, type) and issubclass(value, Artifact):
                types[key] = value
            else:
                raise DefinitionError(
                    f"Resolver: '{key}' must be an artifact type or a channel, got {value!r}"
                )
        if strategy == "latest_blessed_model" and set(types) != {"model", "model_blessing"}:
            raise DefinitionError(
                "Resolver(strategy='latest_blessed_model') takes exactly model=Model, model_blessing=ModelBlessing"
            )
        self.parameters = {"strategy": strategy, "types": {k: type_ref(t) for k, t in types.items()}}
        self.outputs = {k: Channel(t, self, k) for k, t in types.items()}

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        raise AssertionError("resolver nodes are resolved by the launcher, not executed")
