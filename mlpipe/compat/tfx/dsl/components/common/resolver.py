"""``tfx.dsl.components.common.resolver``."""

from mlpipe.compat.tfx.dsl.resolver import Resolver, ResolverStrategy

__all__ = ["Resolver", "ResolverStrategy"]
