"""A pipeline with ``Cond`` blocks, used by the condition tests on every runner.

    measure (Integer n, custom property parity) --> select  [Cond: n >= 3]
                                                      |--> total   [Cond: parity == "odd", nested]
                                                      '--> report  (select's output is optional)

Executors append their node name to $MLPIPE_TEST_CALLS_LOG, so tests count what ran.
"""

from __future__ import annotations

import json
import os

from mlpipe import Cond, InputArtifact, OutputArtifact, Parameter, Pipeline, component
from mlpipe.metadata.config import MetadataConfig
from mlpipe.types import Examples, Float, Integer, String

NODES = ["measure", "select", "total", "report"]


def _record_call(name: str) -> None:
    path = os.environ.get("MLPIPE_TEST_CALLS_LOG")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


@component
def measure(n: OutputArtifact[Integer], rows: Parameter[int] = 5):
    _record_call("measure")
    n.write(rows)
    n.set_custom_property("parity", "odd" if rows % 2 else "even")


@component
def select(n: InputArtifact[Integer], examples: OutputArtifact[Examples]):
    _record_call("select")
    with open(os.path.join(examples.uri, "values.json"), "w") as f:
        json.dump(list(range(int(n.read()))), f)


@component
def total(examples: InputArtifact[Examples], sum_: OutputArtifact[Float]):
    _record_call("total")
    with open(os.path.join(examples.uri, "values.json")) as f:
        sum_.write(float(sum(json.load(f))))


@component
def report(
    n: InputArtifact[Integer], summary: OutputArtifact[String], examples: InputArtifact[Examples] = None
):
    _record_call("report")
    summary.write(f"{n.read()} rows, " + ("selected" if examples is not None else "none selected"))


def create_pipeline(
    root: str, metadata: MetadataConfig | None = None, rows: int = 5, name: str = "gated"
) -> Pipeline:
    m = measure(rows=rows)
    with Cond(m.outputs["n"].future()[0].value >= 3):
        s = select(n=m.outputs["n"])
        with Cond(m.outputs["n"].future()[0].custom_property("parity") == "odd"):
            t = total(examples=s.outputs["examples"])
    r = report(n=m.outputs["n"], examples=s.outputs["examples"])
    return Pipeline(name, root=root, components=[m, s, t, r], metadata=metadata)
