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
        self._console = None
        if live if live is not None else self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.stream)
            self._live = Live(self._table(), console=self._console, refresh_per_second=4)
            self._live.start()

    def _table(self):  # noqa: ANN202 (rich renderable)
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        now = time.perf_counter()
        rows = []
        for n in self.node_ids:
            seconds = self.durations.get(n, now - self.started[n] if n in self.started else None)
            rows.append(
                (n, self.states[n], f"{seconds:.1f}s" if seconds is not None else "", self.why.get(n, ""))
            )
        # A long reason is cut to the width the other columns leave ("mlpipe show RUN_ID" has it
        # whole), and a long node id to half the terminal: left to rich, long cells would squeeze
        # the state and time columns instead.
        width = self._console.width
        state_width = max([len("state"), *(len(r[1]) for r in rows)])
        time_width = max([len("time"), *(len(r[2]) for r in rows)])
        node_room = min(width // 2, width - (state_width + time_width + 3 * 2) - 1)
        node_width = min(max([len("node"), *(len(r[0]) for r in rows)]), max(8, node_room))
        why_width = width - (node_width + state_width + time_width + 4 * 2)  # a space each side of a cell
        table.add_column("node", no_wrap=True, overflow="ellipsis", max_width=node_width)
        table.add_column("state", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        show_why = why_width >= 10
        if show_why:
            table.add_column("why", style="dim", no_wrap=True, overflow="ellipsis", max_width=why_width)
        colors = {
            "COMPLETE": "green",
            "CACHED": "cyan",
            "SKIPPED": "white",
            "FAILED": "red",
            "running": "yellow",
        }
        for node, state, shown, why in rows:
            cells = [node, f"[{colors.get(state, 'dim')}]{state}[/]", shown]
            table.add_row(*cells, *([why] if show_why else []))
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
