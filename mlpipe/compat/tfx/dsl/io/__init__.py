"""``tfx.dsl.io``: file access for module code."""

from mlpipe.compat.tfx.dsl.io import fileio

__all__ = ["fileio"]
