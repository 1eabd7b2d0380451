"""``tfx.dsl.experimental``: the resolver strategies."""

from typing import Any

from mlpipe.compat.tfx.dsl.resolver import (
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    ResolverStrategy,
)
from mlpipe.compat.tfx.unsupported import module_getattr

__all__ = ["LatestArtifactStrategy", "LatestBlessedModelStrategy", "ResolverStrategy"]


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.dsl.experimental", name)
