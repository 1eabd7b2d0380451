"""``tfx.dsl.input_resolution.strategies.latest_artifact_strategy``."""

from mlpipe.compat.tfx.dsl.resolver import LatestArtifactStrategy

__all__ = ["LatestArtifactStrategy"]
