"""``tfx.dsl``: Pipeline, Resolver, Cond, Importer, Channel, and the function-component API."""

from typing import Any

from mlpipe.compat.tfx.dsl import components, experimental, io, standard_annotations
from mlpipe.compat.tfx.dsl.channel import Channel
from mlpipe.compat.tfx.dsl.importer import Importer
from mlpipe.compat.tfx.dsl.resolver import Resolver
from mlpipe.compat.tfx.orchestration.pipeline import Pipeline
from mlpipe.compat.tfx.unsupported import module_getattr
from mlpipe.dsl.condition import Cond
from mlpipe.types.artifact import Artifact

__all__ = ["Artifact", "Channel", "Cond", "Importer", "Pipeline", "Resolver", "components", "experimental",
           "io", "standard_annotations"]  # fmt: skip


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.dsl", name)
