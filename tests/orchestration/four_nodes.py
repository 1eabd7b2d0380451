"""A 4-node chain used by the launcher/runner tests: ingest -> scale -> apply_module -> summarize.

Every executor appends its node name to $MLPIPE_TEST_CALLS_LOG, so tests count executor calls,
also across processes. Node 3 runs user code from a ModuleFile, like Transform/Trainer do.
"""

from __future__ import annotations

import importlib.util
import json
import os

from mlpipe import InputArtifact, ModuleFile, OutputArtifact, Parameter, Pipeline, component
from mlpipe.metadata.config import MetadataConfig
from mlpipe.types import Examples, Float


def _record_call(name: str) -> None:
    path = os.environ.get("MLPIPE_TEST_CALLS_LOG")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


def _read(examples) -> list[float]:
    with open(os.path.join(examples.uri, "values.json")) as f:
        return json.load(f)


def _write(examples, values: list[float]) -> None:
    with open(os.path.join(examples.uri, "values.json"), "w") as f:
        json.dump(values, f)


@component
def ingest(rows: OutputArtifact[Examples], n: Parameter[int] = 5):
    _record_call("ingest")
    _write(rows, [float(i) for i in range(n)])
    rows.split_names = ["train"]
    rows.set_custom_property("num_rows", n)


@component
def scale(
    examples: InputArtifact[Examples], scaled: OutputArtifact[Examples], factor: Parameter[float] = 2.0
):
    _record_call("scale")
    _write(scaled, [v * factor for v in _read(examples)])


@component
def apply_module(
    examples: InputArtifact[Examples],
    transformed: OutputArtifact[Examples],
    module_file: Parameter[ModuleFile],
):
    _record_call("apply_module")
    spec = importlib.util.spec_from_file_location("user_module", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("applying", module_file)
    _write(transformed, [module.transform(v) for v in _read(examples)])


@component
def summarize(examples: InputArtifact[Examples], total: OutputArtifact[Float]):
    _record_call("summarize")
    total.write(sum(_read(examples)))


def create_pipeline(
    root: str | None = None, module_file: str | None = None, metadata: MetadataConfig | None = None,
    name: str | None = None, factor: float = 2.0,
) -> Pipeline:  # fmt: skip
    """Arguments default to $FOUR_NODES_* so the CLI (which calls create_pipeline()) can run it."""
    root = root or os.environ["FOUR_NODES_ROOT"]
    module_file = module_file or os.environ["FOUR_NODES_MODULE"]
    a = ingest(n=5)
    b = scale(examples=a.outputs["rows"], factor=factor)
    c = apply_module(examples=b.outputs["scaled"], module_file=module_file)
    d = summarize(examples=c.outputs["transformed"])
    return Pipeline(
        name or os.environ.get("FOUR_NODES_NAME", "four_nodes"), root, [a, b, c, d], metadata=metadata
    )
