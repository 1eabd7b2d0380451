"""The cache key covers what an ExampleGen reads from outside the pipeline: new data is ingested.

A scheduled pipeline reruns with unchanged parameters; its ExampleGen must reuse its output while the
files it would read are the same, and execute when a new span arrives or a span is re-delivered
(TFX keys its ExampleGen on the resolved span, version and input fingerprint the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlpipe import Pipeline
from mlpipe.components.example_gen import CsvExampleGen
from mlpipe.orchestration.local import LocalDagRunner


def _span(data: Path, span: int, rows: int) -> None:
    (data / f"span-{span}").mkdir(parents=True, exist_ok=True)
    lines = ["x,y"] + [f"{i},{i * span}" for i in range(rows)]
    (data / f"span-{span}" / "data.csv").write_text("\n".join(lines) + "\n")


def _run(tmp_path: Path, data: Path):
    gen = CsvExampleGen(
        input_base=str(data), input_config={"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
    )
    result = LocalDagRunner(progress=False).run(Pipeline("spans", str(tmp_path / "root"), [gen]))
    node = result.results["CsvExampleGen"]
    (examples,) = node.outputs["examples"]
    rows = sum(examples.get_custom_property(f"num_rows_{s}") for s in examples.split_names)
    return node.state, examples.properties["span"], rows, node.cache_miss


def test_example_gen_is_cached_until_a_new_span_arrives_or_its_files_change(tmp_path):
    data = tmp_path / "data"
    _span(data, 1, 30)
    assert _run(tmp_path, data)[:3] == ("COMPLETE", 1, 30)
    assert _run(tmp_path, data)[:3] == ("CACHED", 1, 30)

    _span(data, 2, 12)
    state, span, rows, why = _run(tmp_path, data)
    assert (state, span, rows) == ("COMPLETE", 2, 12)
    assert "external input span: 2 (was 1)" in why

    _span(data, 2, 20)  # span 2 re-delivered in place: same span and version, other files
    os.utime(data / "span-2" / "data.csv", ns=(1, 1))
    state, span, rows, why = _run(tmp_path, data)
    assert (state, span, rows) == ("COMPLETE", 2, 20)
    assert why.startswith("since execution") and "external input files" in why and "span" not in why
