"""A three-node pipeline whose middle node runs until the test releases it.

    start --> hold (waits for the file named by ``release``) --> finish

It lets a test watch a run in progress: ``hold`` stays RUNNING until the file appears.
"""

from __future__ import annotations

import os
import time

from mlpipe import InputArtifact, OutputArtifact, Parameter, Pipeline, component
from mlpipe.metadata.config import MetadataConfig
from mlpipe.types import Integer

HOLD_LIMIT_S = 120  # never hang a test run forever


@component
def start(n: OutputArtifact[Integer]):
    n.write(1)


@component
def hold(n: InputArtifact[Integer], m: OutputArtifact[Integer], release: Parameter[str] = ""):
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} never appeared")
        time.sleep(0.05)
    m.write(int(n.read()) + 1)


@component
def finish(m: InputArtifact[Integer], total: OutputArtifact[Integer]):
    total.write(int(m.read()) * 10)


def create_pipeline(root: str, metadata: MetadataConfig, release: str, name: str = "slow") -> Pipeline:
    s = start()
    h = hold(n=s.outputs["n"], release=release)
    f = finish(m=h.outputs["m"])
    return Pipeline(name, root=root, components=[s, h, f], metadata=metadata, enable_cache=False)
