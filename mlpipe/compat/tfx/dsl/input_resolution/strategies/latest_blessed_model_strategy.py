"""``tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy``."""

from mlpipe.compat.tfx.dsl.resolver import LatestBlessedModelStrategy

__all__ = ["LatestBlessedModelStrategy"]
