"""Notebook entry point: ``from mlpipe.interactive import InteractiveContext``."""

from mlpipe.orchestration.interactive import InteractiveContext

__all__ = ["InteractiveContext"]
