"""``tfx.dsl.components.common.importer``."""

from mlpipe.compat.tfx.dsl.importer import Importer

__all__ = ["Importer"]
