"""What a person sees while a pipeline runs: the reason a node executed, without losing its state."""

from __future__ import annotations

import io

from mlpipe.orchestration.progress import ProgressDisplay

WHY = "since execution 4: parameter 'factor' changed: 2.0 -> 3.0; input 'examples' is artifact 9 (was artifact 3)"


def _show(live: bool, width: int | None = None, first: str = "ExampleValidator") -> str:
    stream = io.StringIO()
    display = ProgressDisplay([first, "scale"], stream=stream, live=live)
    if width:
        display._console.width = width
    display.node_started(first)
    display.node_finished(first, "COMPLETE", 1.5, WHY)
    display.node_started("scale")
    display.node_finished("scale", "CACHED", 0.1)
    if live:
        display._live.stop()
    return stream.getvalue()


def test_plain_lines_carry_the_whole_reason():
    lines = _show(live=False).splitlines()
    assert lines[1] == f"[mlpipe] ExampleValidator: COMPLETE in 1.50s ({WHY})"
    assert lines[3] == "[mlpipe] scale: CACHED in 0.10s"


def test_live_table_cuts_a_long_reason_not_the_state_column():
    for width in (60, 100):
        frame = _show(live=True, width=width).rstrip("\n").splitlines()[-3:]
        assert frame[0].split() == ["node", "state", "time", "why"]
        row = frame[1].split()
        assert row[:4] == ["ExampleValidator", "COMPLETE", "1.5s", "since"]
        assert frame[1].rstrip().endswith("…") and len(frame[1].rstrip()) <= width
        assert frame[2].split() == ["scale", "CACHED", "0.1s"]


def test_live_table_cuts_a_long_node_id_and_drops_the_reason_on_a_narrow_terminal():
    frame = _show(live=True, width=40, first="a_node_id_" * 8).rstrip("\n").splitlines()[-3:]
    assert frame[0].split() == ["node", "state", "time"]  # no room left for "why"
    row = frame[1].split()
    assert row[0].startswith("a_node_id_") and row[0].endswith("…") and row[1:] == ["COMPLETE", "1.5s"]
    assert all(len(line.rstrip()) <= 40 for line in frame)
