"""The outcome of running (part of) a pipeline, shared by every runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlpipe.errors import ComponentError, MlpipeError
from mlpipe.orchestration.launcher import SKIPPED, NodeResult


@dataclass
class RunResult:
    pipeline_name: str
    run_id: str
    results: dict[str, NodeResult] = field(default_factory=dict)
    failed: dict[str, ComponentError] = field(default_factory=dict)
    not_run: list[str] = field(
        default_factory=list
    )  # selected, but stopped by a failure upstream or elsewhere
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return not self.failed and not self.not_run

    def state_of(self, node_id: str) -> str:
        if node_id in self.results:
            return self.results[node_id].state
        return "FAILED" if node_id in self.failed else "NOT RUN"


class RunError(MlpipeError):
    """A run stopped because nodes failed; says what failed, what did not run, and how to resume."""

    def __init__(self, result: RunResult, resume_hint: str):
        self.result = result
        lines = [f"run {result.run_id} of pipeline '{result.pipeline_name}' failed:"]
        lines += [f"  {e}" for e in result.failed.values()]
        if result.not_run:
            lines.append(f"  not run: {', '.join(result.not_run)}")
        skipped = [n for n, r in result.results.items() if r.state == SKIPPED]
        done = [n for n in result.results if n not in skipped]
        if done:
            lines.append(f"  succeeded: {', '.join(done)} (their results are cached)")
        if skipped:
            lines.append(f"  skipped: {', '.join(skipped)} (a Cond did not hold)")
        lines.append(f"  fix the cause, then rerun: {resume_hint}")
        super().__init__("\n".join(lines))
