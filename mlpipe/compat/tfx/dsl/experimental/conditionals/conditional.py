"""``tfx.dsl.experimental.conditionals.conditional``: ``Cond`` (mlpipe's, which takes TFX's
``channel.future()[0].custom_property('blessed') == 1`` predicates)."""

from mlpipe.dsl.condition import Cond

__all__ = ["Cond"]
