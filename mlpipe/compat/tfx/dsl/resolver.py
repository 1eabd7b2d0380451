"""``tfx.dsl.Resolver(strategy_class=..., model=Channel(type=Model), ...)`` on mlpipe's Resolver."""

from __future__ import annotations

from typing import Any

from mlpipe.compat.tfx.dsl.channel import Channel
from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl import resolver


class ResolverStrategy:
    """Base of TFX's strategy classes; mlpipe maps each known subclass to a named strategy."""

    MLPIPE_STRATEGY = ""


class LatestArtifactStrategy(ResolverStrategy):
    """The newest artifact of each input (``desired_num_of_artifacts`` = 1, TFX's default)."""

    MLPIPE_STRATEGY = "latest_artifact"


class LatestBlessedModelStrategy(ResolverStrategy):
    """The newest Model whose ModelBlessing says blessed (inputs ``model`` and ``model_blessing``)."""

    MLPIPE_STRATEGY = "latest_blessed_model"


class Resolver(resolver.Resolver):
    def __init__(
        self, strategy_class: type | None = None, config: dict[str, Any] | None = None, **channels: Any
    ):
        if not (isinstance(strategy_class, type) and issubclass(strategy_class, ResolverStrategy)
                and strategy_class.MLPIPE_STRATEGY):  # fmt: skip
            raise UnsupportedTfxFeature(
                f"tfx.dsl.Resolver(strategy_class={getattr(strategy_class, '__name__', strategy_class)})",
                "use tfx.dsl.experimental.LatestBlessedModelStrategy or LatestArtifactStrategy",
            )
        if config and config != {"desired_num_of_artifacts": 1}:
            raise UnsupportedTfxFeature(
                f"tfx.dsl.Resolver(config={config!r})", "resolvers pick the single newest artifact"
            )
        inputs = {k: v.type if isinstance(v, Channel) else v for k, v in channels.items()}
        super().__init__(strategy_class.MLPIPE_STRATEGY, **inputs)
