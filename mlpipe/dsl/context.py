"""What an executor is handed: its resolved inputs, staging outputs, parameters and a logger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlpipe.errors import ComponentError
from mlpipe.types.artifact import Artifact


@dataclass
class ExecutionContext:
    """The whole world of one execution.

    Executors read ``inputs`` and write into ``outputs[key].uri`` (a staging directory that mlpipe
    publishes atomically when the executor returns). They never touch ML Metadata: anything an
    executor needs from it (a baseline model, a previous span's statistics) arrives as an input.
    """

    node_id: str
    pipeline_name: str
    run_id: str
    execution_id: int
    inputs: dict[str, list[Artifact]]
    outputs: dict[str, Artifact]
    parameters: dict[str, Any]
    tmp_dir: str
    beam_pipeline_args: list[str] = field(default_factory=list)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mlpipe.executor"))
    # the node's directory under the pipeline root: state that outlives one execution (a pending approval)
    node_dir: str = ""
    # a line for the person running the pipeline (the terminal or task log), not only the node's log:
    # for an executor that waits on that person
    tell_user: Callable[[str], None] = print

    def input(self, key: str) -> Artifact | None:
        """The single artifact of input ``key`` (None when an optional input is not wired)."""
        artifacts = self.inputs.get(key) or []
        if len(artifacts) > 1:
            raise ComponentError(
                self.node_id, f"input '{key}' resolved to {len(artifacts)} artifacts, expected one"
            )
        return artifacts[0] if artifacts else None
