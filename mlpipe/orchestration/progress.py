"""What a person sees while a pipeline runs: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from mlpipe.orchestration.run_result import RunResult


class ProgressDisplay:
    """Receives node events from a runner; writes to ``stream`` (stderr by default)."""

    def __init__(self, node_ids: list[str], stream: TextIO | None = None, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.node_ids = node_ids
        self.states = {n: "waiting" for n in node_ids}
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.why: dict[str, str] = {}  # why a node executed rather than reused a cached result
        self._lock = threading.Lock()
        self._live = None
        if live if live is not None else self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.stream)
            self._live = Live(self._table(), console=self._console, refresh_per_second=4)
            self._live.start()

    def _table(self):  # noqa: ANN202 (rich renderable)
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("node", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        # A long reason is cut to the width the other columns leave ("mlpipe show RUN_ID" has it
        # whole); left to rich, a long cell would squeeze the state and time columns out instead.
        others = max(map(len, self.node_ids), default=4) + len("COMPLETE") + len("999.9s") + 6
        room = max(10, self._console.width - others)
        table.add_column("why", style="dim", no_wrap=True, overflow="ellipsis", max_width=room)
        colors = {"COMPLETE": "green", "CACHED": "cyan", "FAILED": "red", "running": "yellow"}
        now = time.perf_counter()
        for n in self.node_ids:
            state = self.states[n]
            seconds = self.durations.get(n, now - self.started[n] if n in self.started else None)
            shown = f"{seconds:.1f}s" if seconds is not None else ""
            table.add_row(n, f"[{colors.get(state, 'dim')}]{state}[/]", shown, self.why.get(n, ""))
        return table

    def _update(self, node_id: str, state: str, line: str) -> None:
        with self._lock:
            self.states[node_id] = state
            if self._live is not None:
                self._live.update(self._table())
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def node_started(self, node_id: str) -> None:
        self.started[node_id] = time.perf_counter()
        self._update(node_id, "running", f"[mlpipe] {node_id}: running")

    def node_finished(self, node_id: str, state: str, seconds: float, why: str | None = None) -> None:
        self.durations[node_id] = seconds
        if why:
            self.why[node_id] = why
        line = f"[mlpipe] {node_id}: {state} in {seconds:.2f}s" + (f" ({why})" if why else "")
        self._update(node_id, state, line)

    def node_failed(self, node_id: str, error: Exception) -> None:
        self.durations[node_id] = time.perf_counter() - self.started.get(node_id, time.perf_counter())
        self._update(node_id, "FAILED", f"[mlpipe] {node_id}: FAILED: {error}")

    def close(self, result: RunResult) -> None:
        for n in result.not_run:
            self.states[n] = "not run"
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
        counts: dict[str, int] = {}
        for n in self.node_ids:
            counts[result.state_of(n)] = counts.get(result.state_of(n), 0) + 1
        summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items()))
        verdict = "succeeded" if result.succeeded else "FAILED"
        self.stream.write(f"[mlpipe] run {result.run_id} {verdict} in {result.seconds:.2f}s: {summary}\n")
        self.stream.flush()
